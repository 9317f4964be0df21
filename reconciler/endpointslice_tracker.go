package reconciler

import (
	"strconv"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// sliceTrackerTTL bounds how long a service waits for its informer to show
// slice writes; after that the cache is trusted again (a slice created and
// deleted by someone else before its write was recorded is never shown).
const sliceTrackerTTL = time.Minute

// sliceTracker remembers, per service key, the EndpointSlice writes a
// controller made that its informer may not show yet: the resourceVersion
// each written slice must reach, and the slices it deleted. While the cache
// is behind, planning from it would add endpoints again that a slice written
// a moment ago already holds, so a slow watch would make duplicate slices.
type sliceTracker struct {
	mu  sync.Mutex
	m   map[string]*trackedSlices
	now func() time.Time
}

type trackedSlices struct {
	written map[string]int64 // slice name → resourceVersion written
	deleted map[string]bool
	at      time.Time
}

func newSliceTracker() *sliceTracker {
	return &sliceTracker{m: map[string]*trackedSlices{}, now: time.Now}
}

func (t *sliceTracker) get(key string) *trackedSlices {
	x := t.m[key]
	if x == nil {
		x = &trackedSlices{written: map[string]int64{}, deleted: map[string]bool{}}
		t.m[key] = x
	}
	x.at = t.now()
	return x
}

// wrote records that slice name of service key was written at rv.
func (t *sliceTracker) wrote(key, name, rv string) {
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.get(key).written[name] = n
}

// deleting records that slice name of service key is about to be deleted.
func (t *sliceTracker) deleting(key, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.get(key).deleted[name] = true
}

// gone is told that slice name of service key has left the cache (or that a
// delete of it did not happen): nothing more is awaited of it.
func (t *sliceTracker) gone(key, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if x := t.m[key]; x != nil {
		delete(x.written, name)
		delete(x.deleted, name)
	}
}

// forget drops everything awaited for a service that is gone.
func (t *sliceTracker) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}

// stale reports whether the cached slices of service key are older than
// what was written: a written slice missing or at an older version, or a
// deleted one still there. What the cache has caught up with is dropped.
func (t *sliceTracker) stale(key string, cached []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	x := t.m[key]
	if x == nil {
		return false
	}
	if t.now().Sub(x.at) > sliceTrackerTTL {
		delete(t.m, key)
		return false
	}
	byName := make(map[string]*discoveryv1.EndpointSlice, len(cached))
	for _, s := range cached {
		byName[s.Name] = s
	}
	behind := false
	for name, rv := range x.written {
		s, ok := byName[name]
		if !ok {
			behind = true
			continue
		}
		if cur, err := strconv.ParseInt(s.ResourceVersion, 10, 64); err == nil && cur >= rv {
			delete(x.written, name)
		} else {
			behind = true
		}
	}
	for name := range x.deleted {
		if _, ok := byName[name]; ok {
			behind = true
		} else {
			delete(x.deleted, name)
		}
	}
	if !behind {
		delete(t.m, key)
	}
	return behind
}
