package reconciler

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestBinderBatchWithAConflict: a batch in which one pod changed since the
// scheduler saw it binds the others and reports the conflict for that one.
func TestBinderBatchWithAConflict(t *testing.T) {
	st := etcdtest.NewStore(t)
	var pods []*corev1.Pod
	for _, name := range []string{"a", "b", "c"} {
		p := pendingPod(name)
		createObj(t, st, p)
		pods = append(pods, p.DeepCopy())
	}
	stale := pods[1].DeepCopy()
	stale.Labels = map[string]string{"changed": "meanwhile"}
	if err := st.Update(t.Context(), stale); err != nil {
		t.Fatal(err)
	}
	b := newBinder(st)
	reqs := make([]bindRequest, len(pods))
	for i, p := range pods {
		p.Spec.NodeName = "n"
		reqs[i] = bindRequest{pod: p, done: make(chan error, 1)}
	}
	b.write(t.Context(), reqs)
	for i, r := range reqs {
		err := <-r.done
		if wantConflict := i == 1; wantConflict != errors.Is(err, store.ErrConflict) || (!wantConflict && err != nil) {
			t.Errorf("pod %s: %v", pods[i].Name, err)
		}
	}
	for _, name := range []string{"a", "c"} {
		if got := getPod(t, st, name).Spec.NodeName; got != "n" {
			t.Errorf("pod %s on %q, want n", name, got)
		}
	}
	if got := getPod(t, st, "b").Spec.NodeName; got != "" {
		t.Errorf("changed pod b bound to %q", got)
	}
}
