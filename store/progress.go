package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// Revision returns etcd's current revision, read linearizably: every write
// acknowledged before the call has a revision no greater than it. A watch
// cache that has seen this revision serves reads as fresh as a quorum read.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, s.prefix+"/", clientv3.WithCountOnly(), clientv3.WithLimit(1))
	if err != nil {
		return 0, fmt.Errorf("read etcd revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// ProgressWatch is a watch that also reports progress: besides ADDED, MODIFIED,
// DELETED and ERROR it delivers BOOKMARK events whose object carries only a
// resourceVersion, meaning every change up to that revision has been
// delivered.
type ProgressWatch interface {
	watch.Interface
	// RequestProgress asks etcd for a BOOKMARK at its current revision; it
	// arrives once the watch has caught up.
	RequestProgress(ctx context.Context) error
}

// WatchWithProgress is Watch plus progress reports (see ProgressWatch), for
// watch caches that must know how fresh they are even when nothing of their
// resource changes. Errors: ErrTooOld, ErrInvalid.
func (s *Store) WatchWithProgress(ctx context.Context, r Resource, opts WatchOptions) (ProgressWatch, error) {
	rev, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	if !r.Namespaced && opts.Namespace != "" {
		return nil, fmt.Errorf("%w: %s is cluster-scoped, got namespace %q", ErrInvalid, r, opts.Namespace)
	}
	key := s.rangePrefix(r, opts.Namespace)
	if opts.Name != "" {
		if key, err = s.key(r, opts.Namespace, opts.Name); err != nil {
			return nil, err
		}
	}
	wopts := []clientv3.OpOption{clientv3.WithPrevKV(), clientv3.WithProgressNotify()}
	if opts.Name == "" {
		wopts = append(wopts, clientv3.WithPrefix())
	}
	if rev > 0 {
		if _, err := s.client.Get(ctx, key, clientv3.WithRev(rev), clientv3.WithCountOnly()); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return nil, fmt.Errorf("watch %s from %d: %w", r, rev, ErrTooOld)
			}
			if !errors.Is(err, rpctypes.ErrFutureRev) {
				return nil, fmt.Errorf("watch %s: %w", r, err)
			}
		}
		wopts = append(wopts, clientv3.WithRev(rev+1))
	}
	// A stream of its own (the metadata keys the client's streams), so that a
	// progress request is answered on this watch alone.
	streamCtx := clientv3.WithRequireLeader(ctx)
	streamCtx, cancel := context.WithCancel(withStreamKey(streamCtx))
	w := &progressWatcher{
		watcher: watcher{res: r, sel: opts.Selector, result: make(chan watch.Event, resultBuffer), cancel: cancel},
		client:  s.client, ctx: streamCtx,
	}
	wch := s.client.Watch(streamCtx, key, wopts...)
	go w.run(wch)
	return w, nil
}

type progressWatcher struct {
	watcher
	client *clientv3.Client
	ctx    context.Context
}

func (w *progressWatcher) RequestProgress(ctx context.Context) error {
	if w.ctx.Err() != nil {
		return fmt.Errorf("watch %s: stopped", w.res)
	}
	// The stream is found by the watch's own context metadata; ctx only
	// bounds the call.
	if err := w.client.RequestProgress(w.ctx); err != nil {
		return fmt.Errorf("watch %s: request progress: %w", w.res, err)
	}
	return ctx.Err()
}

func (w *progressWatcher) run(wch clientv3.WatchChan) {
	defer close(w.result)
	defer w.cancel()
	ctx := w.ctx
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
		if resp.IsProgressNotify() {
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

var streamSeq atomic.Int64

// withStreamKey gives ctx metadata no other watch has, so the etcd client opens
// a gRPC watch stream for this watch alone.
func withStreamKey(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "keelson-watch-stream", strconv.FormatInt(streamSeq.Add(1), 10))
}
