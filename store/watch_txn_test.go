package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event in 10s")
	}
	return watch.Event{}
}

func expect(t *testing.T, w watch.Interface, typ watch.EventType, name string) store.Object {
	t.Helper()
	ev := nextEvent(t, w)
	obj, ok := ev.Object.(store.Object)
	if ev.Type != typ || !ok || obj.GetName() != name {
		t.Fatalf("got %s %#v, want %s %s", ev.Type, ev.Object, typ, name)
	}
	return obj
}

func testWatch(t *testing.T, s *store.Store) {
	ctx := t.Context()
	r, _ := store.ResourceByName("pods")
	before := pod("default", "before", nil)
	mustCreate(t, s, before)
	l, err := s.List(ctx, r, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := pod("default", "web", nil)
	mustCreate(t, s, p) // between list and watch: must still arrive
	w, err := s.Watch(ctx, r, store.WatchOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expect(t, w, watch.Added, "web")
	p.Labels = map[string]string{"x": "y"}
	if err := s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	got := expect(t, w, watch.Modified, "web")
	if got.GetResourceVersion() != p.ResourceVersion || got.GetLabels()["x"] != "y" {
		t.Fatalf("modified event has rv %s labels %v, want %s", got.GetResourceVersion(), got.GetLabels(), p.ResourceVersion)
	}
	if err := s.Delete(ctx, r, "default", "web", nil); err != nil {
		t.Fatal(err)
	}
	deleted := expect(t, w, watch.Deleted, "web")
	if deleted.GetUID() != p.UID {
		t.Fatal("deleted event does not carry the last state of the object")
	}
	w.Stop()
	for range w.ResultChan() {
	}
}

func testWatchSelector(t *testing.T, s *store.Store) {
	ctx := t.Context()
	r, _ := store.ResourceByName("pods")
	w, err := s.Watch(ctx, r, store.WatchOptions{Namespace: "a", Selector: labels.SelectorFromSet(labels.Set{"app": "web"})})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	other := pod("b", "web", map[string]string{"app": "web"}) // other namespace: not seen
	p := pod("a", "x", nil)
	mustCreate(t, s, other, p)
	p.Labels = map[string]string{"app": "web"}
	if err := s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	expect(t, w, watch.Added, "x") // starts matching
	p.Labels = map[string]string{"app": "db"}
	if err := s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	expect(t, w, watch.Deleted, "x") // stops matching
}

func testWatchTooOld(t *testing.T, s *store.Store) {
	ctx := t.Context()
	r, _ := store.ResourceByName("pods")
	p := pod("default", "web", nil)
	mustCreate(t, s, p)
	old := p.ResourceVersion
	for i := range 3 {
		p.Labels = map[string]string{"i": fmt.Sprint(i)}
		if err := s.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	w, err := s.Watch(ctx, r, store.WatchOptions{ResourceVersion: old})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for range 3 {
		expect(t, w, watch.Modified, "web")
	}
	rev, _ := parseInt(p.ResourceVersion)
	if _, err := s.Client().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(ctx, r, store.WatchOptions{ResourceVersion: old}); !errors.Is(err, store.ErrTooOld) {
		t.Fatalf("watch from a compacted revision: got %v, want ErrTooOld", err)
	}
	if _, err := s.List(ctx, r, store.ListOptions{ResourceVersion: old}); !errors.Is(err, store.ErrTooOld) {
		t.Fatalf("list at a compacted revision: got %v, want ErrTooOld", err)
	}
	// A watch that is already past the compacted revision goes on.
	p.Labels = nil
	if err := s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	expect(t, w, watch.Modified, "web")
}

func parseInt(s string) (int64, error) {
	var n int64
	_, err := fmt.Sscan(s, &n)
	return n, err
}

func testTxnAtomic(t *testing.T, s *store.Store) {
	ctx := t.Context()
	r, _ := store.ResourceByName("pods")
	existing := pod("default", "existing", nil)
	mustCreate(t, s, existing, pod("default", "taken", nil))
	existing.Labels = map[string]string{"v": "2"}
	err := s.Txn(ctx,
		store.CreateOp(pod("default", "new", nil)),
		store.UpdateOp(existing),
		store.CreateOp(pod("default", "taken", nil)), // fails: exists
	)
	if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "default/taken") {
		t.Fatalf("got %v, want ErrExists naming default/taken", err)
	}
	if err := s.Get(ctx, "default", "new", &corev1.Pod{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed transaction wrote part of itself: %v", err)
	}
	var cm corev1.ConfigMap
	cm.Namespace, cm.Name = "default", "cfg"
	fresh := existing.DeepCopy()
	if err := s.Get(ctx, "default", "existing", fresh); err != nil {
		t.Fatal(err)
	}
	fresh.Labels = map[string]string{"v": "3"}
	if err := s.Txn(ctx, store.CreateOp(&cm), store.UpdateOp(fresh), store.DeleteOp(r, "default", "nope", nil)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of a missing object in a txn: got %v, want ErrNotFound", err)
	}
	if err := s.Txn(ctx, store.CreateOp(&cm), store.UpdateOp(fresh)); err != nil {
		t.Fatal(err)
	}
	if cm.ResourceVersion == "" || cm.ResourceVersion != fresh.ResourceVersion {
		t.Fatalf("objects of one txn should share its revision: %s vs %s", cm.ResourceVersion, fresh.ResourceVersion)
	}
	if err := s.Txn(ctx, store.DeleteOp(r, "default", "existing", nil), store.DeleteOp(r, "default", "existing", nil)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("same key twice: got %v, want ErrInvalid", err)
	}
}

func testTxnLarge(t *testing.T, s *store.Store) {
	var ops []store.Op
	for i := range 2000 {
		ops = append(ops, store.CreateOp(pod("bulk", fmt.Sprintf("p-%04d", i), map[string]string{"app": "bulk"})))
	}
	if err := s.Txn(t.Context(), ops...); err != nil {
		t.Fatalf("2000-object transaction: %v", err)
	}
	r, _ := store.ResourceByName("pods")
	l, err := s.List(context.Background(), r, store.ListOptions{Namespace: "bulk"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 2000 {
		t.Fatalf("listed %d, want 2000", len(l.Items))
	}
}

// TestWatchShared: shared watchers of one change hold one decoded object;
// a watcher that did not ask to share gets its own copy.
func TestWatchShared(t *testing.T) {
	s := etcdtest.NewStore(t)
	ctx := t.Context()
	res, err := store.ResourceByName("pods")
	if err != nil {
		t.Fatal(err)
	}
	var ws []watch.Interface
	for _, shared := range []bool{true, true, false} {
		w, err := s.Watch(ctx, res, store.WatchOptions{Shared: shared})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		ws = append(ws, w)
	}
	if err := s.Create(ctx, pod("default", "p", nil)); err != nil {
		t.Fatal(err)
	}
	var got []*corev1.Pod
	for _, w := range ws {
		got = append(got, nextEvent(t, w).Object.(*corev1.Pod))
	}
	if got[0] != got[1] {
		t.Error("two shared watchers got two copies of one change")
	}
	if got[2] == got[0] {
		t.Error("a watcher that did not ask to share got the shared object")
	}
	if got[2].Name != "p" || got[0].Name != "p" {
		t.Errorf("watchers got %q and %q, want p", got[0].Name, got[2].Name)
	}
}
