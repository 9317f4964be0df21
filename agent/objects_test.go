package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/keelson/keelson/agent/pod"
)

// TestObjectCacheLetsIdleWatchesGo: a read starts the object's watch; one
// not read for the idle time is stopped; the end of run stops the others
// and waits for them, after which reads ask the API. A missing object is
// ErrRefNotFound, from the watch as from the API.
func TestObjectCacheLetsIdleWatchesGo(t *testing.T) {
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "conf"}, Data: map[string]string{"a": "1"}})
	c := newObjectCache(cs, time.Second, nil)
	l := apiLookup{client: cs, objects: c}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.run(ctx); close(done) }()
	for !c.running() {
		time.Sleep(time.Millisecond)
	}

	cm, err := l.ConfigMap(t.Context(), "shop", "conf")
	if err != nil || cm.Data["a"] != "1" {
		t.Fatalf("ConfigMap: %v, %v", cm, err)
	}
	if _, err := l.Secret(t.Context(), "shop", "missing"); !errors.Is(err, pod.ErrRefNotFound) {
		t.Errorf("a missing secret: %v, want ErrRefNotFound", err)
	}
	if n := c.watched(); n != 2 {
		t.Fatalf("%d objects watched, want 2", n)
	}
	// Read from the watch once it has listed, missing or not.
	deadline := time.Now().Add(10 * time.Second)
	for !c.listed(objectRef{secretKind, "shop", "missing"}) {
		if time.Now().After(deadline) {
			t.Fatal("the watch of the missing secret did not list it in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := l.Secret(t.Context(), "shop", "missing"); !errors.Is(err, pod.ErrRefNotFound) {
		t.Errorf("a missing secret, from its watch: %v, want ErrRefNotFound", err)
	}

	// The ConfigMap is read on, the Secret not: its watch goes.
	for time.Now().Before(deadline) && c.watched() != 1 {
		if _, err := l.ConfigMap(t.Context(), "shop", "conf"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := c.watched(); n != 1 {
		t.Fatalf("%d objects watched after the Secret went unread, want 1", n)
	}
	cancel()
	<-done
	if n := c.watched(); n != 0 {
		t.Errorf("%d objects watched after run ended, want 0", n)
	}
	if cm, err := l.ConfigMap(t.Context(), "shop", "conf"); err != nil || cm.Data["a"] != "1" {
		t.Errorf("ConfigMap after run: %v, %v", cm, err)
	}
}

func (c *objectCache) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ctx != nil
}

// listed says whether ref's watch has listed it.
func (c *objectCache) listed(ref objectRef) bool {
	c.mu.Lock()
	o := c.items[ref]
	c.mu.Unlock()
	return o != nil && o.synced()
}

// watched is the number of objects being watched.
func (c *objectCache) watched() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
