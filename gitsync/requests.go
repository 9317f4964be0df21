package gitsync

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/watch"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// RequestedAtAnnotation on a Sync object asks the process running the sync
// to poll its source now (as Flux's reconcile.fluxcd.io/requestedAt): each
// new value is one request. With several servers, only the leader runs the
// syncs; a webhook that reaches another server is passed on this way.
const RequestedAtAnnotation = "keelson.dev/sync-requested-at"

// Trigger makes the named sync poll now: at once when its loop runs in this
// process, else by asking the process that runs it, through the Sync
// object (RequestedAtAnnotation). Errors: ErrUnknownSync, the store's.
func (s *Syncs) Trigger(ctx context.Context, name string) error {
	m, ok := s.get(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSync, name)
	}
	s.mu.Lock()
	here := s.running != nil
	s.mu.Unlock()
	if here {
		m.loop.Trigger()
		return nil
	}
	stamp := time.Now().UTC().Format(time.RFC3339Nano)
	return updateSync(ctx, s.st, name, func(o *keelsonv1alpha1.Sync) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[RequestedAtAnnotation] = stamp
	})
}

// followRequests triggers the running loops whose Sync object gets a new
// RequestedAtAnnotation, until ctx ends. The values present when it starts
// are not requests to serve: every loop polls as it starts anyway.
func (s *Syncs) followRequests(ctx context.Context) {
	res, err := store.ResourceOf(&keelsonv1alpha1.Sync{})
	if err != nil {
		s.log.Error("sync requests are not followed", "component", "gitsync", "err", err)
		return
	}
	seen, primed := map[string]string{}, false
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.followFrom(ctx, res, seen, &primed)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("following sync requests: watching again", "component", "gitsync", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// followFrom lists the Sync objects, then watches them from that list,
// triggering on each changed request; it returns when the watch ends.
// A request that came while the watch was down is served by the new list.
func (s *Syncs) followFrom(ctx context.Context, res store.Resource, seen map[string]string, primed *bool) error {
	list, err := s.st.List(ctx, res, store.ListOptions{})
	if err != nil {
		return err
	}
	for _, o := range list.Items {
		s.noteRequest(o.GetName(), o.GetAnnotations()[RequestedAtAnnotation], seen, *primed)
	}
	*primed = true
	w, err := s.st.Watch(ctx, res, store.WatchOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Added, watch.Modified:
			if o, ok := ev.Object.(*keelsonv1alpha1.Sync); ok {
				s.noteRequest(o.Name, o.Annotations[RequestedAtAnnotation], seen, true)
			}
		case watch.Error:
			return fmt.Errorf("watch: %v", ev.Object)
		}
	}
	return fmt.Errorf("watch of syncs ended")
}

func (s *Syncs) noteRequest(name, stamp string, seen map[string]string, serve bool) {
	if stamp == "" || seen[name] == stamp {
		return
	}
	seen[name] = stamp
	if !serve {
		return
	}
	if m, ok := s.get(name); ok {
		s.log.Info("sync requested", "component", "gitsync", "sync", name, "requested_at", stamp)
		m.loop.Trigger()
	}
}
