package schema

import (
	"crypto/sha256"
	"path"
	"strings"
	"sync"
)

// Cache remembers the outcome of validating a file by its content, so that a
// file that did not change is not validated again: a commit that changes one
// file of 10,000 re-validates one. It is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]*cacheEntry
	hits    int
}

type cacheEntry struct {
	objs []*Object
	errs ErrorList
}

// NewCache returns a cache of at most maxEntries files (forgetting all of
// them when full, which keeps it simple and bounded).
func NewCache(maxEntries int) *Cache {
	return &Cache{max: maxEntries, entries: map[[sha256.Size]byte]*cacheEntry{}}
}

// Hits is how many files were answered from the cache.
func (c *Cache) Hits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}

// validate answers for name from the cache, or runs validate and remembers
// the outcome. Results are stored without the file name and copied out, so
// that callers may modify what they get; when shared, the copies of a cached
// answer hold the cache's own typed objects, which callers must not modify.
func (c *Cache) validate(name string, data []byte, shared bool, validate func() ([]*Object, ErrorList)) ([]*Object, ErrorList) {
	h := sha256.New()
	h.Write([]byte(strings.ToLower(path.Ext(name)) + "\x00"))
	h.Write(data)
	var key [sha256.Size]byte
	h.Sum(key[:0])

	c.mu.Lock()
	e, ok := c.entries[key]
	if ok {
		c.hits++
	}
	c.mu.Unlock()
	if !ok {
		objs, errs := validate()
		e = &cacheEntry{objs: copyObjects(objs, ""), errs: copyErrors(errs, "")}
		c.mu.Lock()
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
		c.entries[key] = e
		c.mu.Unlock()
		return objs, errs
	}
	if shared {
		return shareObjects(e.objs, name), copyErrors(e.errs, name)
	}
	return copyObjects(e.objs, name), copyErrors(e.errs, name)
}

func copyObjects(objs []*Object, file string) []*Object {
	out := make([]*Object, len(objs))
	for i, o := range objs {
		c := *o
		c.File = file
		c.Object = o.Object.DeepCopyObject()
		out[i] = &c
	}
	return out
}

// shareObjects is copyObjects keeping the typed objects themselves.
func shareObjects(objs []*Object, file string) []*Object {
	out := make([]*Object, len(objs))
	for i, o := range objs {
		c := *o
		c.File = file
		out[i] = &c
	}
	return out
}

func copyErrors(errs ErrorList, file string) ErrorList {
	if len(errs) == 0 {
		return nil
	}
	out := make(ErrorList, len(errs))
	for i, e := range errs {
		c := *e
		c.File = file
		out[i] = &c
	}
	return out
}
