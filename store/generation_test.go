package store_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

// TestSpecChanged: what bumps metadata.generation is any change outside
// metadata and status, compared as Kubernetes compares specs.
func TestSpecChanged(t *testing.T) {
	base := func() *appsv1.Deployment {
		return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}}}}}
	}
	for _, tt := range []struct {
		name   string
		change func(*appsv1.Deployment)
		want   bool
	}{
		{"labels", func(d *appsv1.Deployment) { d.Labels = map[string]string{"a": "b"} }, false},
		{"status", func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 2 }, false},
		{"replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](3) }, true},
		{"a container's image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:2" }, true},
		{"1 CPU written 1000m", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("1000m")
		}, false},
		{"no tolerations written as an empty list", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Tolerations = []corev1.Toleration{}
		}, false},
	} {
		cur := base()
		tt.change(cur)
		if got := store.SpecChanged(base(), cur); got != tt.want {
			t.Errorf("%s: specChanged = %v, want %v", tt.name, got, tt.want)
		}
	}

	u := func(spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w"}, "spec": spec, "status": map[string]any{"ok": true}}}
	}
	old := u(map[string]any{"size": int64(1)})
	relabelled := u(map[string]any{"size": int64(1)})
	relabelled.SetLabels(map[string]string{"a": "b"})
	relabelled.Object["status"] = map[string]any{"ok": false}
	if store.SpecChanged(old, relabelled) {
		t.Error("a custom object's labels and status bumped its generation")
	}
	if !store.SpecChanged(old, u(map[string]any{"size": int64(2)})) {
		t.Error("a custom object's spec change did not bump its generation")
	}
	extra := u(map[string]any{"size": int64(1)})
	extra.Object["data"] = "x"
	if !store.SpecChanged(old, extra) || !store.SpecChanged(extra, old) {
		t.Error("a custom object's added or removed top-level field did not bump its generation")
	}
}
