package clusterdns

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/keelson/keelson/internal/servicenet"
)

// svcKey names a service: namespace and name, lower-cased as DNS compares them.
type svcKey struct{ ns, name string }

// ptrRef is one name an address points back to: the owner of the record and
// its name relative to the zone ("web.default.svc").
type ptrRef struct {
	owner svcKey
	name  string
}

// index is the in-memory zone: what queries read, kept from informer events.
// Queries take the read lock only for map look-ups; views and ptr slices are
// never changed once published, only replaced, so a query may keep reading
// one after the lock is released.
type index struct {
	mu         sync.RWMutex
	services   map[svcKey]*service
	slices     map[svcKey]map[svcKey]*slice // by owning service, by slice ns/name
	sliceOwner map[svcKey]svcKey            // slice ns/name → the service it was filed under
	views      map[svcKey]*view
	namespaces map[string]int // views per namespace, so ns.svc.<zone> exists while one does
	ptr        map[netip.Addr][]ptrRef

	serial atomic.Uint32 // the SOA serial, bumped at every change
	rr     atomic.Uint32 // rotates headless answers so clients spread their load
}

func newIndex(serial uint32) *index {
	ix := &index{
		services:   map[svcKey]*service{},
		slices:     map[svcKey]map[svcKey]*slice{},
		sliceOwner: map[svcKey]svcKey{},
		views:      map[svcKey]*view{},
		namespaces: map[string]int{},
		ptr:        map[netip.Addr][]ptrRef{},
	}
	ix.serial.Store(serial)
	return ix
}

// view returns the service's records, or nil.
func (ix *index) view(ns, name string) *view {
	ix.mu.RLock()
	v := ix.views[svcKey{ns, name}]
	ix.mu.RUnlock()
	return v
}

// hasNamespace reports whether a service of the namespace is known.
func (ix *index) hasNamespace(ns string) bool {
	ix.mu.RLock()
	n := ix.namespaces[ns]
	ix.mu.RUnlock()
	return n > 0
}

// lookupPTR returns the names an address points back to.
func (ix *index) lookupPTR(a netip.Addr) []ptrRef {
	ix.mu.RLock()
	refs := ix.ptr[a]
	ix.mu.RUnlock()
	return refs
}

// dnsAddrs are cluster DNS's own service addresses, the glue of the zone's NS.
func (ix *index) dnsAddrs() []netip.Addr {
	v := ix.view(servicenet.DNSServiceNamespace, servicenet.DNSServiceName)
	if v == nil || v.kind != kindClusterIP {
		return nil
	}
	return v.addrs
}

// setService records a service (nil: deleted) and rebuilds its records.
func (ix *index) setService(k svcKey, s *service) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if s == nil {
		delete(ix.services, k)
	} else {
		ix.services[k] = s
	}
	ix.rebuild(k)
}

// setSlice records an EndpointSlice (nil: deleted) under the service it
// names, and rebuilds that service's records, and the former owner's when a
// relabel moved the slice.
func (ix *index) setSlice(k svcKey, sl *slice) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.sliceOwner[k]; ok {
		delete(ix.slices[old], k)
		if len(ix.slices[old]) == 0 {
			delete(ix.slices, old)
		}
		delete(ix.sliceOwner, k)
		if sl == nil || sl.owner != old {
			ix.rebuild(old)
		}
	}
	if sl == nil {
		return
	}
	m := ix.slices[sl.owner]
	if m == nil {
		m = map[svcKey]*slice{}
		ix.slices[sl.owner] = m
	}
	m[k] = sl
	ix.sliceOwner[k] = sl.owner
	ix.rebuild(sl.owner)
}

// rebuild replaces the service's view and its reverse records. Callers hold
// the write lock. Its cost is the size of one service, whatever the number
// of services.
func (ix *index) rebuild(k svcKey) {
	if old := ix.views[k]; old != nil {
		for _, p := range old.ptrs {
			ix.dropPTR(p.addr, k)
		}
		delete(ix.views, k)
		if ix.namespaces[k.ns]--; ix.namespaces[k.ns] <= 0 {
			delete(ix.namespaces, k.ns)
		}
	}
	if s := ix.services[k]; s != nil {
		v := buildView(k, s, ix.slices[k])
		ix.views[k] = v
		ix.namespaces[k.ns]++
		for _, p := range v.ptrs {
			ix.ptr[p.addr] = append(slices.Clip(ix.ptr[p.addr]), ptrRef{owner: k, name: p.name})
		}
	}
	ix.serial.Add(1)
}

// dropPTR removes the owner's names of an address, into a new slice so that
// readers of the old one are not disturbed.
func (ix *index) dropPTR(a netip.Addr, owner svcKey) {
	refs := ix.ptr[a]
	kept := make([]ptrRef, 0, len(refs))
	for _, r := range refs {
		if r.owner != owner {
			kept = append(kept, r)
		}
	}
	if len(kept) == 0 {
		delete(ix.ptr, a)
		return
	}
	ix.ptr[a] = kept
}
