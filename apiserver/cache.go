package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
)

// entry is one object as the cache keeps it: decoded for selectors and tables,
// and encoded once for every client that reads it. Entries are never changed
// after they are made, so readers share them without locks.
type entry struct {
	obj    store.Object
	raw    []byte
	key    string // namespace/name, the order of etcd keys
	labels labels.Set
	fields fields.Set
}

func newEntry(res store.Resource, obj store.Object) (*entry, error) {
	// The store decodes with the kind set; obj may be shared with other
	// readers, so it is written only when it lacks it.
	if obj.GetObjectKind().GroupVersionKind() != res.GVK {
		obj.GetObjectKind().SetGroupVersionKind(res.GVK)
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", res, obj.GetName(), err)
	}
	key := obj.GetName()
	if ns := obj.GetNamespace(); ns != "" {
		key = ns + "/" + key
	}
	return &entry{obj: obj, raw: raw, key: key, labels: labels.Set(obj.GetLabels()), fields: objectFields(res, obj)}, nil
}

// event is one change as the cache fans it out. For DELETED, cur is the object
// as it was, at the deletion's resourceVersion; prev is the object before a
// MODIFIED.
type event struct {
	typ       watch.EventType
	cur, prev *entry
	rv        int64
}

// cacheConfig tunes a cache; zero values take defaults.
type cacheConfig struct {
	// History is how many recent events a watch may resume from.
	History int
	// WatcherBuffer is how many events a watcher may fall behind before it is
	// dropped as too slow.
	WatcherBuffer int
	// FreshWait bounds how long a consistent read waits for the cache to catch
	// up with etcd before it reads etcd itself.
	FreshWait time.Duration
}

func (c *cacheConfig) defaults() {
	if c.History <= 0 {
		c.History = 4096
	}
	if c.WatcherBuffer <= 0 {
		c.WatcherBuffer = 1024
	}
	if c.FreshWait <= 0 {
		c.FreshWait = 3 * time.Second
	}
}

// cache is the watch cache of one resource: one etcd watch whose events keep
// an in-memory copy of every object and a bounded window of recent events,
// fanned out to every client watch.
type cache struct {
	res     store.Resource
	st      *store.Store
	cfg     cacheConfig
	log     *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever rv or ready changes
	ready   bool
	objs    map[string]*entry
	sorted  []*entry // objs in key order; nil when it must be rebuilt
	rv      int64
	// gen counts the changes to objs, for those who derive something from
	// all of them (the RBAC policy) and must know when to derive it again.
	gen      uint64
	history  []event // oldest first, at most cfg.History
	oldest   int64   // a watch from rv >= oldest misses nothing in history
	watchers map[*watcher]struct{}
	progress func(context.Context) error
	// cancelWatch ends the current etcd watch, making the cache start over.
	cancelWatch context.CancelFunc
}

func newCache(res store.Resource, st *store.Store, cfg cacheConfig, log *slog.Logger, m *metrics) *cache {
	cfg.defaults()
	return &cache{
		res: res, st: st, cfg: cfg, log: log.With("resource", res.String()), metrics: m,
		changed: make(chan struct{}), objs: map[string]*entry{}, watchers: map[*watcher]struct{}{},
	}
}

// run keeps the cache in step with etcd until ctx ends: list, then watch from
// the list's revision; on any break, drop every client watch (they must list
// again, as events may be lost) and start over.
func (c *cache) run(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.listAndWatch(ctx)
		c.reset(err)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("watch cache restarting", "err", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (c *cache) listAndWatch(ctx context.Context) error {
	// The cache only reads its objects: it shares them with the store's
	// decode cache and the controllers' informers.
	list, err := c.st.List(ctx, c.res, store.ListOptions{Shared: true})
	if err != nil {
		return err
	}
	objs := make(map[string]*entry, len(list.Items))
	for _, o := range list.Items {
		e, err := newEntry(c.res, o)
		if err != nil {
			return err
		}
		objs[e.key] = e
	}
	rv, _ := strconv.ParseInt(list.ResourceVersion, 10, 64)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := c.st.WatchWithProgress(ctx, c.res, store.WatchOptions{ResourceVersion: list.ResourceVersion, Shared: true})
	if err != nil {
		return err
	}
	defer w.Stop()
	c.mu.Lock()
	c.cancelWatch = cancel
	c.objs, c.sorted, c.rv, c.oldest, c.history = objs, nil, rv, rv, nil
	c.gen++
	c.ready, c.progress = true, w.RequestProgress
	c.notifyLocked()
	c.mu.Unlock()
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Error:
			return store.WatchError(ev)
		case watch.Bookmark:
			c.advance(ev.Object.(store.Object).GetResourceVersion())
		default:
			if err := c.apply(ev); err != nil {
				return err
			}
		}
	}
	return errors.New("etcd watch closed")
}

// restart drops the etcd watch as a failure would: client watches end with
// 410 and the cache lists and watches again.
func (c *cache) restart() {
	c.mu.Lock()
	cancel := c.cancelWatch
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// reset marks the cache unready and ends every client watch with err.
func (c *cache) reset(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ready, c.progress, c.cancelWatch = false, nil, nil
	status := apierrors.NewResourceExpired(fmt.Sprintf("watch cache of %s restarted: list again (%v)", c.res, err))
	for w := range c.watchers {
		c.dropLocked(w, status)
	}
	c.notifyLocked()
}

func (c *cache) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *cache) advance(rvs string) {
	rv, err := strconv.ParseInt(rvs, 10, 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	if rv > c.rv {
		c.rv = rv
		c.notifyLocked()
	}
	c.mu.Unlock()
}

func (c *cache) apply(ev watch.Event) error {
	obj := ev.Object.(store.Object)
	rv, err := strconv.ParseInt(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return fmt.Errorf("%s event with resourceVersion %q", c.res, obj.GetResourceVersion())
	}
	cur, err := newEntry(c.res, obj)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.objs[cur.key]
	e := event{typ: ev.Type, cur: cur, rv: rv}
	switch {
	case ev.Type == watch.Deleted:
		delete(c.objs, cur.key)
		c.sorted = nil
	case prev == nil:
		e.typ = watch.Added
		c.objs[cur.key] = cur
		c.sorted = nil
	default:
		e.typ, e.prev = watch.Modified, prev
		c.objs[cur.key] = cur
		if c.sorted != nil {
			i, _ := slices.BinarySearchFunc(c.sorted, cur.key, func(e *entry, k string) int { return compareKeys(e.key, k) })
			c.sorted[i] = cur
		}
	}
	if len(c.history) >= c.cfg.History {
		// Drop an eighth at once so trimming is rare; a watch may resume
		// from the last dropped event's revision.
		n := 1 + len(c.history)/8
		c.oldest = c.history[n-1].rv
		c.history = slices.Delete(c.history, 0, n)
	}
	c.history = append(c.history, e)
	c.gen++
	if rv > c.rv {
		c.rv = rv
	}
	for w := range c.watchers {
		c.sendLocked(w, e)
	}
	c.notifyLocked()
	return nil
}

func compareKeys(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sendLocked hands e to w without waiting: a watcher whose buffer is full is
// dropped, so one slow client never holds up the others.
func (c *cache) sendLocked(w *watcher, e event) {
	if !w.interested(e) {
		return
	}
	select {
	case w.events <- e:
	default:
		c.metrics.slowWatchers.WithLabelValues(c.res.String()).Inc()
		c.dropLocked(w, apierrors.NewTooManyRequests(fmt.Sprintf("watch of %s fell %d events behind and was dropped: watch again from the last resourceVersion", c.res, cap(w.events)), 1))
	}
}

func (c *cache) dropLocked(w *watcher, err *apierrors.StatusError) {
	delete(c.watchers, w)
	w.err = err
	close(w.done)
}

// waitFor waits until the cache has seen revision rv.
func (c *cache) waitFor(ctx context.Context, rv int64) error {
	for {
		c.mu.Lock()
		ok, ch := c.ready && c.rv >= rv, c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// waitReady waits for the first list to finish.
func (c *cache) waitReady(ctx context.Context) error { return c.waitFor(ctx, 0) }

// waitFresh waits until the cache has every change acknowledged before the
// call, as a quorum read of etcd would. It asks etcd for progress, since a
// quiet resource has no events to move the cache on.
func (c *cache) waitFresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.FreshWait)
	defer cancel()
	rev, err := c.st.Revision(ctx)
	if err != nil {
		return err
	}
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	return c.catchUp(ctx, rev)
}

// catchUp waits until the cache has seen revision rev, asking etcd for
// progress when it has not: rev may come from a write to another resource,
// which this cache's watch never reports.
func (c *cache) catchUp(ctx context.Context, rev int64) error {
	c.mu.Lock()
	fresh, progress := c.ready && c.rv >= rev, c.progress
	c.mu.Unlock()
	if fresh {
		return nil
	}
	if progress != nil {
		if err := progress(ctx); err != nil {
			return err
		}
	}
	return c.waitFor(ctx, rev)
}

// snapshot returns the objects that match, in key order, and the revision they
// are as of.
func (c *cache) snapshot(match func(*entry) bool) ([]*entry, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshotLocked(match), c.rv
}

func (c *cache) snapshotLocked(match func(*entry) bool) []*entry {
	if c.sorted == nil {
		c.sorted = make([]*entry, 0, len(c.objs))
		for _, e := range c.objs {
			c.sorted = append(c.sorted, e)
		}
		slices.SortFunc(c.sorted, func(a, b *entry) int { return compareKeys(a.key, b.key) })
	}
	out := make([]*entry, 0, len(c.sorted))
	for _, e := range c.sorted {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// all returns every object and the generation they are of.
func (c *cache) all() ([]*entry, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*entry, 0, len(c.objs))
	for _, e := range c.objs {
		out = append(out, e)
	}
	return out, c.gen
}

// generation returns how many times the objects changed, and whether the
// cache has listed them.
func (c *cache) generation() (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.ready
}

// get returns one object from the cache, or nil.
func (c *cache) get(key string) (*entry, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.objs[key], c.rv
}

// tooLarge is the error for a resourceVersion the cache has not reached in
// time, as Kubernetes reports it: clients retry later.
func tooLarge(rv int64) *apierrors.StatusError {
	err := apierrors.NewTimeoutError(fmt.Sprintf("too large resource version: %d: the cache has not seen it yet", rv), 1)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
	err.ErrStatus.Code = http.StatusGatewayTimeout
	return err
}

// Watchers returns how many client watches of a resource ("pods",
// "deployments.apps") are open, for tests and diagnostics.
func (s *Server) Watchers(resource string) int {
	s.cachesMu.Lock()
	c := s.caches[resource]
	s.cachesMu.Unlock()
	if c == nil {
		return 0
	}
	return c.watcherCount()
}
