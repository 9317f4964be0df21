package reconciler

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// expectationsTTL bounds how long a controller waits for its informer to show
// writes it made; after that it trusts the cache again (the watch may have
// been relisted and the events folded away).
const expectationsTTL = 5 * time.Minute

// expectations remember, per owner key, the pod creations and deletions a
// controller has written but its informer has not shown yet. While some are
// outstanding the controller does not create or delete again, so a slow watch
// never causes a double creation or deletion.
type expectations struct {
	mu  sync.Mutex
	m   map[string]*expectation
	now func() time.Time
}

type expectation struct {
	adds int
	dels map[types.UID]bool
	at   time.Time
}

func newExpectations() *expectations {
	return &expectations{m: map[string]*expectation{}, now: time.Now}
}

// satisfied reports whether nothing written for key is still unseen.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if (x.adds <= 0 && len(x.dels) == 0) || e.now().Sub(x.at) > expectationsTTL {
		delete(e.m, key)
		return true
	}
	return false
}

func (e *expectations) get(key string) *expectation {
	x, ok := e.m[key]
	if !ok {
		x = &expectation{dels: map[types.UID]bool{}}
		e.m[key] = x
	}
	x.at = e.now()
	return x
}

// expectCreations records n creations about to be written (negative: some
// failed and will not be seen).
func (e *expectations) expectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.get(key).adds += n
}

// expectDeletion records that the pod with uid is about to be deleted.
func (e *expectations) expectDeletion(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.get(key).dels[uid] = true
}

// creationObserved is called when the informer shows a pod of key's.
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// deletionObserved is called when the informer shows a pod gone (or a delete
// of it failed because it was already gone).
func (e *expectations) deletionObserved(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.dels, uid)
	}
}

// forget drops everything expected for key (its owner is gone).
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// deleting reports whether the pod with uid was deleted by us and the
// informer has not shown it gone yet: it no longer counts.
func (e *expectations) deleting(key string, uid types.UID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	return ok && x.dels[uid]
}
