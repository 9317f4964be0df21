package reconciler

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestInformerCacheAndIndexes(t *testing.T) {
	st := etcdtest.NewStore(t)
	mk := func(ns, name, node, owner string, lbl map[string]string) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl}, Spec: corev1.PodSpec{NodeName: node}}
		if owner != "" {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "o", UID: types.UID(owner)}}
		}
		if err := st.Create(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	mk("a", "before", "n1", "u1", map[string]string{"app": "web"})
	inf := NewInformers(st, 0, testLog())
	pods := inf.For(store.MustResource("pods"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	inf.Start(ctx)
	if !inf.WaitForSync(ctx) {
		t.Fatal("never synced")
	}
	mk("a", "after", "n2", "u1", map[string]string{"app": "web", "tier": "db"})
	mk("b", "other", "", "u2", map[string]string{"app": "api"})
	eventually(t, "watch delivers new pods", func() (bool, string) {
		return len(pods.GetStore().List()) == 3, "not yet"
	})
	checks := []struct {
		name, index, value string
		want               int
	}{
		{"namespace a", IndexNamespace, "a", 2},
		{"owner u1", IndexOwner, "u1", 2},
		{"owner u2", IndexOwner, "u2", 1},
		{"node n1", IndexNode, "n1", 1},
		{"unscheduled", IndexNode, "", 1},
		{"label app=web", IndexLabel, "app=web", 2},
		{"label tier=db", IndexLabel, "tier=db", 1},
	}
	for _, c := range checks {
		if got := len(ByIndex[*corev1.Pod](pods, c.index, c.value)); got != c.want {
			t.Errorf("%s: %d objects, want %d", c.name, got, c.want)
		}
	}
	sel, _ := labels.Parse("app in (web, api), tier!=db")
	if got := Selected[*corev1.Pod](pods, "a", sel); len(got) != 1 || got[0].Name != "before" {
		t.Errorf("Selected: %v", got)
	}
	if err := st.Delete(t.Context(), store.MustResource("pods"), "a", "before", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "watch delivers the deletion", func() (bool, string) {
		_, ok := GetCached[*corev1.Pod](pods, "a", "before")
		return !ok, "still cached"
	})
}

// TestListWatchTooOld checks that the adapter reports a compacted revision as
// the 410 Expired error on which client-go's Reflector relists.
func TestListWatchTooOld(t *testing.T) {
	st := etcdtest.NewStore(t)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p"}}
	if err := st.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	old := p.ResourceVersion
	p.Labels = map[string]string{"x": "y"}
	if err := st.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	rev, err := st.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client().Compact(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	lw := &listWatch{st: st, res: store.MustResource("pods")}
	if _, err := lw.WatchWithContext(t.Context(), metav1.ListOptions{ResourceVersion: old}); !apierrors.IsResourceExpired(err) {
		t.Errorf("watch from a compacted revision: %v, want 410 Expired", err)
	}
	if _, err := lw.ListWithContext(t.Context(), metav1.ListOptions{ResourceVersion: old}); !apierrors.IsResourceExpired(err) {
		t.Errorf("list at a compacted revision: %v, want 410 Expired", err)
	}
	l, err := lw.ListWithContext(t.Context(), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil || len(l.(*objectList).Items) != 1 {
		t.Fatalf("relist: %v", err)
	}
}
