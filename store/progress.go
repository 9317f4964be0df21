package store

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
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
	key, wopts, err := s.watchSetup(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	// A stream of its own (the metadata keys the client's streams), so that a
	// progress request is answered on this watch alone.
	streamCtx := clientv3.WithRequireLeader(ctx)
	streamCtx, cancel := context.WithCancel(withStreamKey(streamCtx))
	w := &progressWatcher{watcher: s.newWatcher(r, opts, cancel), client: s.client, ctx: streamCtx}
	w.bookmarks = true
	go w.run(streamCtx, s.client.Watch(streamCtx, key, append(wopts, clientv3.WithProgressNotify())...))
	return w, nil
}

type progressWatcher struct {
	*watcher
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

var streamSeq atomic.Int64

// withStreamKey gives ctx metadata no other watch has, so the etcd client opens
// a gRPC watch stream for this watch alone.
func withStreamKey(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "keelson-watch-stream", strconv.FormatInt(streamSeq.Add(1), 10))
}
