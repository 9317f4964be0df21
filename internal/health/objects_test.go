package health

import (
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

// TestOfObjects reads declared objects from a real store: a Deployment no
// controller has seen is Progressing, a ConfigMap Healthy, an absent object
// Missing, and the roll-up is the worst of them with its sentence.
func TestOfObjects(t *testing.T) {
	st := etcdtest.NewStore(t)
	ctx := t.Context()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}}}}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}}
	for _, o := range []store.Object{d, cm} {
		if err := st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	deploy := ObjectRef{GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Namespace: "default", Name: "web"}
	cfg := ObjectRef{GVK: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Namespace: "default", Name: "cfg"}
	absent := ObjectRef{GVK: corev1.SchemeGroupVersion.WithKind("Secret"), Namespace: "default", Name: "gone"}

	all, each, err := OfObjects(ctx, st, []ObjectRef{deploy, cfg})
	if err != nil {
		t.Fatal(err)
	}
	if all.Status != Progressing || len(each) != 2 || each[0].Ref != deploy || each[0].Status != Progressing || each[1].Status != Healthy {
		t.Errorf("deployment and configmap: %+v %+v", all, each)
	}
	all, each, err = OfObjects(ctx, st, []ObjectRef{deploy, absent, cfg})
	if err != nil {
		t.Fatal(err)
	}
	if all != (Health{Missing, "not found in the cluster"}) || len(each) != 3 || each[1].Ref != absent || each[1].Status != Missing {
		t.Errorf("with an absent object: %+v %+v", all, each)
	}
	if all, each, err := OfObjects(ctx, st, nil); err != nil || all.Status != Healthy || len(each) != 0 {
		t.Errorf("no objects: %+v %+v %v", all, each, err)
	}
	unknown := ObjectRef{GVK: schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, Name: "w"}
	if _, _, err := OfObjects(ctx, st, []ObjectRef{cfg, unknown}); !errors.Is(err, store.ErrUnknownKind) {
		t.Errorf("unknown kind: %v, want store.ErrUnknownKind", err)
	}
}

// Every kind a watcher is told to watch is one the store serves, once.
func TestKindsResolve(t *testing.T) {
	seen := map[string]bool{}
	for _, gr := range Kinds {
		if _, err := store.ResourceByName(gr); err != nil {
			t.Errorf("%s: %v", gr, err)
		}
		if seen[gr] {
			t.Errorf("%s is listed twice", gr)
		}
		seen[gr] = true
	}
}
