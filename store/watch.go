package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
)

// WatchOptions narrows a Watch.
type WatchOptions struct {
	// Namespace limits the watch to one namespace; empty watches all.
	Namespace string
	// Name watches a single object (Namespace must be set for namespaced kinds).
	Name string
	// Selector keeps only objects whose labels match. An object whose labels
	// stop matching arrives as DELETED, one that starts matching as ADDED.
	Selector labels.Selector
	// ResourceVersion delivers every change after that revision, typically a
	// List's; empty starts from now.
	ResourceVersion string
	// Shared delivers the store's cached objects themselves instead of
	// copies, as ListOptions.Shared: the watchers of one change (informers,
	// the API's watch cache) then hold one decoded object between them.
	// Modifying one corrupts every other reader; DeepCopy it first.
	Shared bool
}

// resultBuffer lets etcd's watch run ahead of a slow reader by this many events
// before it waits.
const resultBuffer = 128

// Watch streams changes to objects of r as watch.Events (ADDED, MODIFIED,
// DELETED, with the object at that revision). When the revision asked for has
// been compacted, Watch returns ErrTooOld; if compaction happens later, the
// stream ends with an ERROR event whose Status has code 410 (see WatchError).
// Errors: ErrTooOld, ErrInvalid.
func (s *Store) Watch(ctx context.Context, r Resource, opts WatchOptions) (watch.Interface, error) {
	key, wopts, err := s.watchSetup(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	w := s.newWatcher(r, opts, cancel)
	go w.run(ctx, s.client.Watch(ctx, key, wopts...))
	return w, nil
}

func (s *Store) newWatcher(r Resource, opts WatchOptions, cancel context.CancelFunc) *watcher {
	return &watcher{cache: s.cache, res: r, sel: opts.Selector, shared: opts.Shared, result: make(chan watch.Event, resultBuffer), cancel: cancel}
}

// watchSetup checks the options and returns the key and etcd options of a
// watch of r; a revision etcd has compacted away is ErrTooOld at once rather
// than from the stream.
func (s *Store) watchSetup(ctx context.Context, r Resource, opts WatchOptions) (string, []clientv3.OpOption, error) {
	rev, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return "", nil, err
	}
	if !r.Namespaced && opts.Namespace != "" {
		return "", nil, fmt.Errorf("%w: %s is cluster-scoped, got namespace %q", ErrInvalid, r, opts.Namespace)
	}
	wopts := []clientv3.OpOption{clientv3.WithPrevKV()}
	key := s.rangePrefix(r, opts.Namespace)
	if opts.Name != "" {
		if key, err = s.key(r, opts.Namespace, opts.Name); err != nil {
			return "", nil, err
		}
	} else {
		wopts = append(wopts, clientv3.WithPrefix())
	}
	if rev > 0 {
		if _, err := s.client.Get(ctx, key, clientv3.WithRev(rev), clientv3.WithCountOnly()); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return "", nil, fmt.Errorf("watch %s from %d: %w", r, rev, ErrTooOld)
			}
			if !errors.Is(err, rpctypes.ErrFutureRev) {
				return "", nil, fmt.Errorf("watch %s: %w", r, err)
			}
		}
		wopts = append(wopts, clientv3.WithRev(rev+1))
	}
	return key, wopts, nil
}

type watcher struct {
	// bookmarks turns etcd's progress notifications into BOOKMARK events.
	bookmarks bool
	cache     *decodeCache
	res       Resource
	sel       labels.Selector
	shared    bool
	result    chan watch.Event
	cancel    context.CancelFunc
}

// Stop ends the watch; ResultChan is closed soon after.
func (w *watcher) Stop() { w.cancel() }

// ResultChan delivers the events; it is closed when the watch ends.
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

func (w *watcher) run(ctx context.Context, wch clientv3.WatchChan) {
	defer close(w.result)
	defer w.cancel()
	for resp := range wch {
		if err := resp.Err(); err != nil {
			code := int32(http.StatusInternalServerError)
			reason := metav1.StatusReasonInternalError
			if resp.CompactRevision != 0 || errors.Is(err, rpctypes.ErrCompacted) {
				code, reason = http.StatusGone, metav1.StatusReasonExpired
			}
			w.send(ctx, watch.Event{Type: watch.Error, Object: &metav1.Status{
				Status: metav1.StatusFailure, Code: code, Reason: reason,
				Message: fmt.Sprintf("watch %s: %v", w.res, err),
			}})
			return
		}
		if w.bookmarks && resp.IsProgressNotify() {
			obj, err := w.res.New()
			if err != nil {
				return
			}
			obj.SetResourceVersion(formatRV(resp.Header.Revision))
			if !w.send(ctx, watch.Event{Type: watch.Bookmark, Object: obj}) {
				return
			}
			continue
		}
		for _, ev := range resp.Events {
			out, ok, err := w.convert(ev)
			if err != nil {
				w.send(ctx, watch.Event{Type: watch.Error, Object: &metav1.Status{
					Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
					Reason: metav1.StatusReasonInternalError, Message: err.Error(),
				}})
				return
			}
			if ok && !w.send(ctx, out) {
				return
			}
		}
	}
}

func (w *watcher) send(ctx context.Context, ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// convert turns one etcd event into the watch event a reader of this selector
// sees, if any.
func (w *watcher) convert(ev *clientv3.Event) (watch.Event, bool, error) {
	var cur, prev Object
	var err error
	if ev.Type == mvccpb.PUT {
		if cur, err = w.cache.get(w.res, ev.Kv, w.shared); err != nil {
			return watch.Event{}, false, err
		}
	}
	if ev.PrevKv != nil && (ev.Type == mvccpb.DELETE || w.sel != nil) {
		// A deleted object is reported as it was, at the deletion's revision.
		if prev, err = w.cache.decodeKV(w.res, ev.PrevKv, ev.Kv.ModRevision); err != nil {
			return watch.Event{}, false, err
		}
	}
	match := func(o Object) bool {
		return o != nil && (w.sel == nil || w.sel.Matches(labels.Set(o.GetLabels())))
	}
	switch {
	case ev.Type == mvccpb.DELETE:
		return watch.Event{Type: watch.Deleted, Object: prev}, match(prev), nil
	case ev.IsCreate():
		return watch.Event{Type: watch.Added, Object: cur}, match(cur), nil
	case w.sel == nil:
		return watch.Event{Type: watch.Modified, Object: cur}, true, nil
	case match(cur) && match(prev):
		return watch.Event{Type: watch.Modified, Object: cur}, true, nil
	case match(cur):
		return watch.Event{Type: watch.Added, Object: cur}, true, nil
	case match(prev):
		return watch.Event{Type: watch.Deleted, Object: cur}, true, nil
	}
	return watch.Event{}, false, nil
}

// WatchError returns the error an ERROR event carries: wrapping ErrTooOld for
// code 410, so callers know to list again.
func WatchError(ev watch.Event) error {
	st, ok := ev.Object.(*metav1.Status)
	if !ok {
		return fmt.Errorf("watch error event with %T", ev.Object)
	}
	if st.Code == http.StatusGone {
		return fmt.Errorf("%s: %w", st.Message, ErrTooOld)
	}
	return errors.New(st.Message)
}
