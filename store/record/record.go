package record

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
)

// Recorder writes Events about objects: Normal or Warning, a CamelCase reason
// and a message. Repeats of the same event on the same object are folded into
// one Event whose count goes up. Writes happen in the background so that a
// slow etcd never holds a controller up; when the backlog is full, events are
// dropped (and logged), as Kubernetes' broadcaster does.
type Recorder struct {
	st        *store.Store
	component string
	log       *slog.Logger
	ch        chan *corev1.Event
	mu        sync.Mutex
	seen      map[string]*corev1.Event // by namespace/name, the last written
	now       func() time.Time
	// drops counts events dropped since the last log line about them, at
	// lastDropLog (unix nanoseconds).
	drops, lastDropLog atomic.Int64
}

// eventBacklog is how many events may wait to be written.
const eventBacklog = 4096

// New returns a recorder whose events name component as their source.
// Call Run to write them.
func New(st *store.Store, component string, log *slog.Logger) *Recorder {
	return &Recorder{st: st, component: component, log: log, ch: make(chan *corev1.Event, eventBacklog),
		seen: map[string]*corev1.Event{}, now: time.Now}
}

// Eventf records an event about obj.
func (r *Recorder) Eventf(obj store.Object, eventType, reason, format string, args ...any) {
	if r == nil {
		return
	}
	res, err := store.ResourceOf(obj)
	if err != nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s", obj.GetUID(), eventType, reason, msg, r.component)
	now := metav1.NewTime(r.now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s.%x", obj.GetName(), h.Sum64())},
		InvolvedObject: corev1.ObjectReference{
			Kind: res.GVK.Kind, APIVersion: res.GVK.GroupVersion().String(), Namespace: obj.GetNamespace(),
			Name: obj.GetName(), UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Type: eventType, Reason: reason, Message: msg, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source:              corev1.EventSource{Component: r.component},
		ReportingController: "keelson.dev/" + r.component,
	}
	select {
	case r.ch <- ev:
	default:
		r.dropped(ns+"/"+obj.GetName(), reason)
	}
}

// dropLogEvery bounds the log lines about dropped events: a burst (the
// scheduler binding thousands of pods) must not flood the log.
const dropLogEvery = 10 * time.Second

// dropped counts an event dropped for a full backlog and logs at most one
// line per dropLogEvery, with how many were dropped since the last line.
func (r *Recorder) dropped(object, reason string) {
	n := r.drops.Add(1)
	now := r.now().UnixNano()
	last := r.lastDropLog.Load()
	if last != 0 && now-last < int64(dropLogEvery) {
		return
	}
	if !r.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	r.drops.Add(-n)
	r.log.Warn("events dropped, backlog full", "count", n, "last_object", object, "last_reason", reason)
}

// Run writes recorded events until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.ch:
			if err := r.write(ctx, ev); err != nil && ctx.Err() == nil {
				r.log.Warn("write event", "event", ev.Namespace+"/"+ev.Name, "err", err)
			}
		}
	}
}

// write creates the event, or bumps the count of the one already there.
func (r *Recorder) write(ctx context.Context, ev *corev1.Event) error {
	key := ev.Namespace + "/" + ev.Name
	for attempt := 0; attempt < 3; attempt++ {
		r.mu.Lock()
		prev := r.seen[key]
		r.mu.Unlock()
		var err error
		var cur *corev1.Event
		if prev == nil {
			cur = ev.DeepCopy()
			err = r.st.Create(ctx, cur)
		} else {
			cur = prev.DeepCopy()
			cur.Count++
			cur.LastTimestamp = ev.LastTimestamp
			cur.InvolvedObject.ResourceVersion = ev.InvolvedObject.ResourceVersion
			err = r.st.Update(ctx, cur)
		}
		switch {
		case err == nil:
			r.remember(key, cur)
			return nil
		case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict):
			stored := &corev1.Event{}
			if gerr := r.st.Get(ctx, ev.Namespace, ev.Name, stored); gerr == nil {
				r.remember(key, stored)
				continue
			}
			r.forget(key)
		case errors.Is(err, store.ErrNotFound):
			r.forget(key)
		default:
			return err
		}
	}
	return fmt.Errorf("event %s: gave up after repeated conflicts", key)
}

func (r *Recorder) remember(key string, ev *corev1.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) > 10000 {
		clear(r.seen)
	}
	r.seen[key] = ev
}

func (r *Recorder) forget(key string) {
	r.mu.Lock()
	delete(r.seen, key)
	r.mu.Unlock()
}

// ExpireEvents deletes every Event last seen more than ttl ago, every period,
// until ctx ends.
func ExpireEvents(ctx context.Context, st *store.Store, ttl, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := expireEventsOnce(ctx, st, time.Now().Add(-ttl)); err != nil && ctx.Err() == nil {
			log.Warn("expire events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func expireEventsOnce(ctx context.Context, st *store.Store, before time.Time) error {
	res, _ := store.ResourceByName("events")
	l, err := st.List(ctx, res, store.ListOptions{Shared: true})
	if err != nil {
		return err
	}
	for _, o := range l.Items {
		ev := o.(*corev1.Event)
		last := ev.LastTimestamp.Time
		if last.IsZero() {
			last = ev.CreationTimestamp.Time
		}
		if !last.Before(before) {
			continue
		}
		rv := ev.ResourceVersion
		err := st.Delete(ctx, res, ev.Namespace, ev.Name, &metav1.Preconditions{ResourceVersion: &rv})
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}
