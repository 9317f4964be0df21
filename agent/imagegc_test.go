package agent

import (
	"errors"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/runtimetest"
)

// TestRemoveUnusedImages: under disk pressure, images no container was
// made from and no pending pod names go, largest first, all their names
// with them, and no more once the pressure ends; the image a container
// runs and the one a pod waits for stay. On real containerd.
func TestRemoveUnusedImages(t *testing.T) {
	rt, _ := containerdtest.NewRuntime(t)
	ctx := t.Context()
	a := &Agent{cfg: Config{Runtime: rt}, log: slog.New(slog.DiscardHandler)}
	runtimetest.ImportFile(t, rt, "localhost/big:1", 4<<20)
	big := runtimetest.ImportFile(t, rt, "localhost/big:alias", 4<<20) // the same image, another name
	runtimetest.ImportFile(t, rt, "localhost/small:1", 1<<20)
	runtimetest.ImportFile(t, rt, "localhost/pending:1", 2<<20)
	id, err := rt.Create(ctx, runtimetest.Spec("runs", "sleep", "3600"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Remove(t.Context(), id) })
	pending := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "localhost/pending:1"}}}}
	finished := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "localhost/small:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}
	has := func(ref string) bool {
		_, err := rt.Image(ctx, ref)
		if err != nil && !errors.Is(err, runtime.ErrImageNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	// One image frees enough: the largest goes, with both its names.
	removed := 0
	a.removeUnusedImages(ctx, []*corev1.Pod{pending, finished}, func() bool { removed++; return removed == 1 })
	if has("localhost/big:1") || has("localhost/big:alias") {
		t.Errorf("the largest unused image %s is still there", big.ID)
	}
	if !has("localhost/small:1") {
		t.Error("the smaller unused image went too, after the pressure ended")
	}
	// Pressure that does not end: every unused image goes.
	a.removeUnusedImages(ctx, []*corev1.Pod{pending, finished}, func() bool { return true })
	if has("localhost/small:1") {
		t.Error("an image only a finished pod names was kept")
	}
	for _, ref := range []string{runtimetest.Image, "localhost/pending:1"} {
		if !has(ref) {
			t.Errorf("image %s, in use, was removed", ref)
		}
	}
}
