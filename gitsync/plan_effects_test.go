package gitsync

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/keelson/keelson/store"
)

func planPodTemplate(images ...string) corev1.PodTemplateSpec {
	t := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}}}
	for i, img := range images {
		t.Spec.Containers = append(t.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: img})
	}
	return t
}

func TestPlanEffects(t *testing.T) {
	i32 := func(n int32) *int32 { return &n }
	pct := func(s string) *intstr.IntOrString { v := intstr.Parse(s); return &v }
	deploy := func(replicas int32, strategy appsv1.DeploymentStrategy, images ...string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
			Spec: appsv1.DeploymentSpec{Replicas: i32(replicas), Strategy: strategy, Template: planPodTemplate(images...)}}
	}
	rolling := func(surge, unavail string) appsv1.DeploymentStrategy {
		return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: pct(surge), MaxUnavailable: pct(unavail)}}
	}
	sts := func(replicas int32, partition int32, image string) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
			Spec: appsv1.StatefulSetSpec{Replicas: i32(replicas), Template: planPodTemplate(image),
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: i32(partition)}}}}
	}
	ds := func(image string, nodes int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "log", Namespace: "shop"},
			Spec: appsv1.DaemonSetSpec{Template: planPodTemplate(image), UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: pct("1")}}},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: nodes}}
	}
	cases := []struct {
		name      string
		old, head store.Object
		want      string
	}{
		{"rolling update, percentages", deploy(10, rolling("25%", "25%"), "web:1.4"), deploy(10, rolling("25%", "25%"), "web:1.5"),
			"rolling update of 10 pods, image web:1.4 → web:1.5, at most 3 extra and 2 unavailable at a time"},
		{"rolling update, both round to zero", deploy(1, rolling("0", "10%"), "web:1.4"), deploy(1, rolling("0", "10%"), "web:1.5"),
			"rolling update of 1 pod, image web:1.4 → web:1.5, at most 0 extra and 1 unavailable at a time"},
		{"two containers", deploy(2, rolling("1", "0"), "web:1", "proxy:1"), deploy(2, rolling("1", "0"), "web:1", "proxy:2"),
			"rolling update of 2 pods, b: image proxy:1 → proxy:2, at most 1 extra and 0 unavailable at a time"},
		{"recreate and scale", deploy(2, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, "web:1"),
			deploy(4, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, "web:2"),
			"scale 2 → 4; recreate 4 pods, image web:1 → web:2: all old pods stop before new ones start"},
		{"statefulset partition", sts(5, 3, "db:15"), sts(5, 3, "db:16"),
			"rolling update of 5 pods, image db:15 → db:16, one at a time from the highest ordinal (db-4, db-3), only ordinals ≥ 3"},
		{"statefulset scale down", sts(5, 0, "db:15"), sts(2, 0, "db:15"), "scale 5 → 2: removes db-4, db-3, db-2, highest first"},
		{"statefulset scale up, rolling", sts(1, 0, "db:15"), sts(6, 0, "db:16"),
			"scale 1 → 6: adds db-1 … db-5, in order; rolling update of 6 pods, image db:15 → db:16, one at a time from the highest ordinal (db-5 … db-0)"},
		{"statefulset created", nil, sts(3, 0, "db:15"), "creates 3 pods db-0, db-1, db-2, each once the one before is ready (db:15)"},
		{"daemonset", ds("log:1", 4), ds("log:2", 0),
			"rolling update of 4 pods, one per node, image log:1 → log:2, at most 1 unavailable at a time"},
		{"delete deployment", deploy(3, rolling("1", "0"), "web:1"), nil, "deleted, stopping its 3 pods"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(effects(tc.old, tc.head, nil), "; "); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
