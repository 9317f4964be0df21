package apiserver

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestMain serves the external test package too: one binary, one etcd.
func TestMain(m *testing.M) { etcdtest.Main(m) }

// A client that stops reading is dropped with an error once its buffer is
// full; the other clients get every event regardless.
func TestSlowWatcherIsDroppedOthersContinue(t *testing.T) {
	st := etcdtest.NewStore(t)
	ctx := t.Context()
	pods, _ := store.ResourceByName("pods")
	c := newCache(pods, st, cacheConfig{WatcherBuffer: 4}, slog.Default(), newMetrics(nil))
	go c.run(ctx)
	all := func(*entry) bool { return true }
	if err := c.waitFresh(ctx); err != nil {
		t.Fatal(err)
	}
	slow, _, rv, err := c.watch(ctx, watchStart{from: 0, initial: true}, all)
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop(slow)
	fast, _, _, err := c.watch(ctx, watchStart{from: rv}, all)
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop(fast)
	const n = 20
	got := make(chan int)
	go func() {
		count := 0
		for count < n {
			select {
			case <-fast.events:
				count++
			case <-fast.done:
				t.Errorf("the fast watcher was dropped: %v", fast.err)
				got <- count
				return
			}
		}
		got <- count
	}()
	for i := range n {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p%d", i)}}
		if err := st.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if count := <-got; count != n {
		t.Fatalf("fast watcher got %d events, want %d", count, n)
	}
	select {
	case <-slow.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow watcher was not dropped")
	}
	if !apierrors.IsTooManyRequests(slow.err) {
		t.Fatalf("slow watcher dropped with %v, want 429 (watch again)", slow.err)
	}
	if n := c.watcherCount(); n != 1 {
		t.Fatalf("%d watchers registered, want only the fast one", n)
	}
}

// When the cache loses its etcd watch, every client watch ends with 410 so the
// client lists again, and the cache lists and watches anew.
func TestCacheRestartEndsClientWatchesWithGone(t *testing.T) {
	st := etcdtest.NewStore(t)
	ctx := t.Context()
	pods, _ := store.ResourceByName("pods")
	c := newCache(pods, st, cacheConfig{}, slog.Default(), newMetrics(nil))
	go c.run(ctx)
	if err := c.waitFresh(ctx); err != nil {
		t.Fatal(err)
	}
	w, _, _, err := c.watch(ctx, watchStart{initial: true}, func(*entry) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	c.restart()
	<-w.done
	if !apierrors.IsResourceExpired(w.err) && !apierrors.IsGone(w.err) {
		t.Fatalf("client watch ended with %v, want 410", w.err)
	}
	if err := st.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "after"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.waitFresh(ctx); err != nil {
		t.Fatalf("cache after reset: %v", err)
	}
	if e, _ := c.get("default/after"); e == nil {
		t.Fatal("the cache does not hold a pod written after its reset")
	}
}
