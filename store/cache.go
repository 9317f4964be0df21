package store

import (
	"reflect"
	"runtime"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// DefaultDecodeCacheSize is how many decoded objects a store keeps by
// default. The objects are mostly those the informers and the API's watch
// cache hold anyway (shared reads and watches), so an entry costs little
// more than its key; a hit spares an update its read of the current object.
const DefaultDecodeCacheSize = 200000

// decodeCache keeps the decoded form of the values the store has read, keyed
// by etcd key and valid for one mod revision. Decoding JSON into k8s.io/api
// structs costs ~10x a deep copy, and controllers, informers and the API list
// the same unchanged objects again and again; with the cache a list costs
// about what the etcd range read costs. Callers always get their own copy.
type decodeCache struct {
	mu  sync.RWMutex
	m   map[string]cacheEntry
	max int
	// vals opens sealed values before they are decoded.
	vals *values
}

type cacheEntry struct {
	rev int64
	obj Object
}

func newDecodeCache(max int) *decodeCache {
	return &decodeCache{m: make(map[string]cacheEntry), max: max}
}

// decode returns a private copy of the object stored in kv, decoding it only
// when the cache does not hold that key at that revision.
func (c *decodeCache) decode(r Resource, kv *mvccpb.KeyValue) (Object, error) {
	return c.get(r, kv, false)
}

// get is decode; with shared, it returns the cached object itself, which the
// caller must not modify.
func (c *decodeCache) get(r Resource, kv *mvccpb.KeyValue, shared bool) (Object, error) {
	if c.max <= 0 {
		return c.decodeKV(r, kv, kv.ModRevision)
	}
	c.mu.RLock()
	e, ok := c.m[string(kv.Key)]
	c.mu.RUnlock()
	if ok && e.rev == kv.ModRevision && e.obj.GetObjectKind().GroupVersionKind() == r.GVK {
		if shared {
			return e.obj, nil
		}
		return e.obj.DeepCopyObject().(Object), nil
	}
	obj, err := c.decodeKV(r, kv, kv.ModRevision)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	switch cur, ok := c.m[string(kv.Key)]; {
	case ok && cur.rev == kv.ModRevision && cur.obj.GetObjectKind().GroupVersionKind() == r.GVK:
		obj = cur.obj // decoded meanwhile by another reader: share that one
	case !ok || cur.rev < kv.ModRevision:
		if !ok && len(c.m) >= c.max {
			c.evictLocked()
		}
		c.m[string(kv.Key)] = cacheEntry{rev: kv.ModRevision, obj: obj}
	}
	c.mu.Unlock()
	if shared {
		return obj, nil
	}
	return obj.DeepCopyObject().(Object), nil
}

// decodeKV opens and decodes kv's value, without the cache, with rev as its
// resourceVersion.
func (c *decodeCache) decodeKV(r Resource, kv *mvccpb.KeyValue, rev int64) (Object, error) {
	value, err := c.vals.open(kv.Key, kv.Value)
	if err != nil {
		return nil, err
	}
	return decode(r, kv.Key, value, rev)
}

// at returns the cached object stored under key at mod revision rev, which
// the caller must not modify; false when the cache does not hold it.
func (c *decodeCache) at(r Resource, key string, rev int64) (Object, bool) {
	if c == nil || c.max <= 0 {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || e.rev != rev || e.obj.GetObjectKind().GroupVersionKind() != r.GVK {
		return nil, false
	}
	return e.obj, true
}

// decodeInto is decode for a caller-supplied object of the right type.
func (c *decodeCache) decodeInto(r Resource, kv *mvccpb.KeyValue, into Object) error {
	obj, err := c.decode(r, kv)
	if err != nil {
		return err
	}
	dst, src := reflect.ValueOf(into), reflect.ValueOf(obj)
	if dst.Type() != src.Type() {
		value, err := c.vals.open(kv.Key, kv.Value)
		if err != nil {
			return err
		}
		return decodeInto(r, kv.Key, value, kv.ModRevision, into)
	}
	dst.Elem().Set(src.Elem())
	return nil
}

// forget drops a key the store deleted.
func (c *decodeCache) forget(key string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// evictLocked drops about an eighth of the entries, in map order (which Go
// randomises), so keys deleted by other writers cannot grow the cache forever.
func (c *decodeCache) evictLocked() {
	n := len(c.m)/8 + 1
	for k := range c.m {
		delete(c.m, k)
		if n--; n == 0 {
			return
		}
	}
}

// parallelDecodeMin is the list size from which decoding is split across CPUs.
const parallelDecodeMin = 512

// decodeKVs decodes kvs in order, across all CPUs for long lists.
func (c *decodeCache) decodeKVs(r Resource, kvs []*mvccpb.KeyValue, shared bool) ([]Object, error) {
	out := make([]Object, len(kvs))
	workers := runtime.GOMAXPROCS(0)
	if len(kvs) < parallelDecodeMin || workers == 1 {
		for i, kv := range kvs {
			obj, err := c.get(r, kv, shared)
			if err != nil {
				return nil, err
			}
			out[i] = obj
		}
		return out, nil
	}
	errs := make([]error, workers)
	chunk := (len(kvs) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(kvs))
		if lo >= hi {
			break
		}
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				obj, err := c.get(r, kvs[i], shared)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = obj
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
