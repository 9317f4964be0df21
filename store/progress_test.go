package store_test

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestWatchWithProgressReportsRevisionWithoutEvents(t *testing.T) {
	s := etcdtest.NewStore(t)
	ctx := t.Context()
	pods, _ := store.ResourceByName("pods")
	w, err := s.WatchWithProgress(ctx, pods, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// A write to another resource moves etcd's revision but not the pods watch.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "c"}}
	if err := s.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.ResourceVersion; got != strconv.FormatInt(rev, 10) {
		t.Fatalf("Revision = %d after a write at %s", rev, got)
	}
	if err := w.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	ev := <-w.ResultChan()
	if ev.Type != watch.Bookmark {
		t.Fatalf("got %s event, want BOOKMARK", ev.Type)
	}
	if rv, _ := strconv.ParseInt(ev.Object.(*corev1.Pod).ResourceVersion, 10, 64); rv < rev {
		t.Fatalf("bookmark at %d, want at least %d", rv, rev)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"}}
	if err := s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	ev = <-w.ResultChan()
	if ev.Type != watch.Added || ev.Object.(*corev1.Pod).Name != "p" {
		t.Fatalf("got %s %v, want ADDED p", ev.Type, ev.Object)
	}
	w.Stop()
	for range w.ResultChan() {
	}
}
