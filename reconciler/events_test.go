package reconciler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
)

func listEvents(t *testing.T, st *store.Store) []*corev1.Event {
	t.Helper()
	l, err := st.List(t.Context(), store.MustResource("events"), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*corev1.Event
	for _, o := range l.Items {
		out = append(out, o.(*corev1.Event))
	}
	return out
}

func TestControllersWriteEvents(t *testing.T) {
	env := newTestEnv(t)
	rs := newRS("web", 2)
	if err := env.st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	waitRS(t, env, "web", 2)
	eventually(t, "a SuccessfulCreate event about the replicaset", func() (bool, string) {
		for _, ev := range listEvents(t, env.st) {
			if ev.Reason == "SuccessfulCreate" && ev.InvolvedObject.Name == "web" && ev.Type == corev1.EventTypeNormal {
				return true, ""
			}
		}
		return false, "none yet"
	})
}
