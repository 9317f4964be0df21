package apiserver

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
)

// watcher is one client watch registered with a cache. The cache sends to
// events without waiting; when events is full, the cache closes done and sets
// err instead.
type watcher struct {
	events chan event
	done   chan struct{}
	err    *apierrors.StatusError // set before done is closed
	match  func(*entry) bool
}

// interested says whether e changes what this watcher sees.
func (w *watcher) interested(e event) bool {
	return w.match(e.cur) || (e.prev != nil && w.match(e.prev))
}

// translate says what e looks like to this watcher's selectors: an object
// that stops matching is DELETED, one that starts matching is ADDED.
func (w *watcher) translate(e event) (watch.EventType, bool) {
	if e.typ != watch.Modified {
		return e.typ, w.match(e.cur)
	}
	now, before := w.match(e.cur), e.prev != nil && w.match(e.prev)
	switch {
	case now && before:
		return watch.Modified, true
	case now:
		return watch.Added, true
	case before:
		return watch.Deleted, true
	}
	return "", false
}

// watchStart says where a client watch begins.
type watchStart struct {
	// initial sends the current state as ADDED events first; otherwise the
	// watch replays every change after from.
	initial bool
	from    int64
}

// watch registers a client watch and returns the events it must see before
// the live ones, and the revision they bring it to. Errors: 410 Expired when
// from is older than the history window.
func (c *cache) watch(ctx context.Context, start watchStart, match func(*entry) bool) (*watcher, []event, int64, error) {
	if err := c.waitReady(ctx); err != nil {
		return nil, nil, 0, err
	}
	w := &watcher{events: make(chan event, c.cfg.WatcherBuffer), done: make(chan struct{}), match: match}
	var first []event
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return nil, nil, 0, apierrors.NewTooManyRequests(fmt.Sprintf("the watch cache of %s is restarting", c.res), 1)
	}
	if start.initial {
		// Snapshot and registration under one lock: no event falls between.
		snap := c.snapshotLocked(match)
		first = make([]event, len(snap))
		for i, e := range snap {
			first[i] = event{typ: watch.Added, cur: e, rv: c.rv}
		}
		c.watchers[w] = struct{}{}
		return w, first, c.rv, nil
	}
	if start.from < c.oldest {
		return nil, nil, 0, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", start.from, c.oldest))
	}
	for _, e := range c.history {
		if e.rv > start.from && w.interested(e) {
			first = append(first, e)
		}
	}
	c.watchers[w] = struct{}{}
	return w, first, c.rv, nil
}

// stop unregisters w; it is safe after the cache dropped it.
func (c *cache) stop(w *watcher) {
	c.mu.Lock()
	delete(c.watchers, w)
	c.mu.Unlock()
}

// bookmarkRV returns a revision w may be told it has seen everything up to:
// the cache's, when nothing is waiting in w's buffer.
func (c *cache) bookmarkRV(w *watcher) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rv, len(w.events) == 0
}

func (c *cache) watcherCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.watchers)
}
