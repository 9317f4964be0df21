package reconciler

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
)

// podObserver follows every pod change in a namespace and checks an invariant
// at every state etcd passed through (all changes of one revision applied).
type podObserver struct {
	mu     sync.Mutex
	pods   map[string]*corev1.Pod
	check  func(pods map[string]*corev1.Pod) error
	errs   []string
	states int
	cancel context.CancelFunc
	done   chan struct{}
}

func observePods(t *testing.T, st *store.Store, ns string, check func(map[string]*corev1.Pod) error) *podObserver {
	t.Helper()
	l, err := st.List(t.Context(), store.MustResource("pods"), store.ListOptions{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	o := &podObserver{pods: map[string]*corev1.Pod{}, check: check, done: make(chan struct{})}
	for _, it := range l.Items {
		p := it.(*corev1.Pod)
		o.pods[p.Name] = p
	}
	o.verify()
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	w, err := st.Watch(ctx, store.MustResource("pods"), store.WatchOptions{Namespace: ns, ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	go o.run(w)
	t.Cleanup(func() { o.stop() })
	return o
}

func (o *podObserver) run(w watch.Interface) {
	defer close(o.done)
	defer w.Stop()
	lastRV := ""
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			o.mu.Lock()
			o.errs = append(o.errs, fmt.Sprintf("watch ended: %v", ev.Object))
			o.mu.Unlock()
			return
		}
		o.mu.Lock()
		if lastRV != "" && p.ResourceVersion != lastRV {
			o.verify()
		}
		lastRV = p.ResourceVersion
		if ev.Type == watch.Deleted {
			delete(o.pods, p.Name)
		} else {
			o.pods[p.Name] = p
		}
		o.mu.Unlock()
		if len(w.ResultChan()) == 0 {
			o.mu.Lock()
			o.verify()
			lastRV = ""
			o.mu.Unlock()
		}
	}
}

// verify checks the current state; o.mu is held.
func (o *podObserver) verify() {
	o.states++
	if err := o.check(o.pods); err != nil && len(o.errs) < 10 {
		o.errs = append(o.errs, fmt.Sprintf("state %d: %v", o.states, err))
	}
}

func (o *podObserver) stop() {
	o.cancel()
	<-o.done
}

// report stops the observer and fails the test for every violation seen.
func (o *podObserver) report(t *testing.T) {
	t.Helper()
	o.stop()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.errs {
		t.Error(e)
	}
	t.Logf("checked %d states", o.states)
}
