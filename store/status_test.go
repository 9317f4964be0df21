package store_test

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestUpdateStatusChangesOnlyStatus(t *testing.T) {
	s := etcdtest.NewStore(t)
	ctx := t.Context()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", Labels: map[string]string{"app": "a"}},
		Spec:       corev1.PodSpec{NodeName: "n1"},
	}
	if err := s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	created := pod.ResourceVersion
	upd := pod.DeepCopy()
	upd.Spec.NodeName = "n2"
	upd.Labels["app"] = "b"
	upd.Status.Phase = corev1.PodRunning
	if err := s.UpdateStatus(ctx, upd); err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := s.Get(ctx, "default", "p", &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodRunning || got.Spec.NodeName != "n1" || got.Labels["app"] != "a" {
		t.Fatalf("stored phase=%s node=%s app=%s, want Running n1 a", got.Status.Phase, got.Spec.NodeName, got.Labels["app"])
	}
	if got.Generation != 1 || upd.ResourceVersion != got.ResourceVersion {
		t.Fatalf("generation %d (want 1), returned rv %s, stored %s", got.Generation, upd.ResourceVersion, got.ResourceVersion)
	}
	stale := pod.DeepCopy()
	stale.ResourceVersion = created
	if err := s.UpdateStatus(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale UpdateStatus: %v, want ErrConflict", err)
	}
	missing := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "gone"}}
	if err := s.UpdateStatus(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateStatus of a missing pod: %v, want ErrNotFound", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "c"}}
	if err := s.UpdateStatus(ctx, cm); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("UpdateStatus of a config map: %v, want ErrInvalid", err)
	}
}
