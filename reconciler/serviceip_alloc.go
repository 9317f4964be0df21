package reconciler

import (
	"cmp"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/internal/servicenet"
)

// pendingFor is how long an address picked by one worker is kept from the
// others while its reservation is written and reaches the informer. It is
// only a hint: etcd's refusal of a second IPAddress of one name is what
// keeps an address from being given twice.
const pendingFor = time.Minute

// ipAllocator picks free addresses of the service CIDR, as Kubernetes does:
// at random above the static band (kept for addresses written in Git), in
// the band only when the rest is full, never the kubernetes and DNS
// services' own.
type ipAllocator struct {
	cidr servicenet.CIDR
	used func(netip.Addr) bool
	now  func() time.Time
	mu   sync.Mutex
	// pending holds addresses picked but not yet seen in the informer.
	pending map[netip.Addr]time.Time
}

func newIPAllocator(cidr servicenet.CIDR, used func(netip.Addr) bool) *ipAllocator {
	return &ipAllocator{cidr: cidr, used: used, now: time.Now, pending: map[netip.Addr]time.Time{}}
}

// bands are the offsets to try, in order: above the static band, then in it.
func (a *ipAllocator) bands() [][2]int {
	size := a.cidr.Size()
	band := min(a.cidr.StaticBand(), size)
	return [][2]int{{band + 1, size}, {1, band}}
}

// pick returns a free address and keeps it from other callers for a while;
// false when every address is used.
func (a *ipAllocator) pick() (netip.Addr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.pending) > 256 {
		for addr, t := range a.pending {
			if now.Sub(t) >= pendingFor {
				delete(a.pending, addr)
			}
		}
	}
	base := binary.BigEndian.Uint32(a.cidr.Prefix().Addr().AsSlice())
	api, dns := a.cidr.APIServerIP(), a.cidr.DNSIP()
	for _, b := range a.bands() {
		n := b[1] - b[0] + 1
		if n <= 0 {
			continue
		}
		start := rand.IntN(n)
		for i := range n {
			var raw [4]byte
			binary.BigEndian.PutUint32(raw[:], base+uint32(b[0]+(start+i)%n))
			addr := netip.AddrFrom4(raw)
			if addr == api || addr == dns {
				continue
			}
			if t, ok := a.pending[addr]; ok && now.Sub(t) < pendingFor {
				continue
			}
			if a.used(addr) {
				continue
			}
			a.pending[addr] = now
			return addr, true
		}
	}
	return netip.Addr{}, false
}

// seen forgets a pending address once the informer shows its reservation,
// and failed one whose reservation was not written.
func (a *ipAllocator) seen(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pending, addr)
}

func (a *ipAllocator) failed(addr netip.Addr) { a.seen(addr) }

// nodePorts is the leader's map of which service holds each node port. No
// object reserves a node port, and none is needed: only the leader
// allocates, it takes a port in this map before writing it, and the port is
// written in the same compare-and-swap update as the Service that holds it,
// so the Services in the store are the whole truth and a new leader rebuilds
// the map from its informer cache of them before it allocates anything.
// One port number serves every protocol of the service holding it (53/TCP
// and 53/UDP share one node port, as in Kubernetes).
type nodePorts struct {
	r      servicenet.PortRange
	mu     sync.Mutex
	holder map[int32]string          // port → service key
	byKey  map[string]map[int32]bool // service key → ports
}

func newNodePorts(r servicenet.PortRange) *nodePorts {
	return &nodePorts{r: r, holder: map[int32]string{}, byKey: map[string]map[int32]bool{}}
}

// rebuild takes the ports the services' specs hold, oldest service first:
// where two hold one port, the older keeps it and the other's reconcile
// reports it taken.
func (p *nodePorts) rebuild(svcs []*corev1.Service) {
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for _, s := range svcs {
		if !servicenet.HasNodePorts(s) {
			continue
		}
		key := s.Namespace + "/" + s.Name
		for _, port := range s.Spec.Ports {
			if p.r.Contains(port.NodePort) {
				p.claim(key, port.NodePort)
			}
		}
	}
}

// claim gives port to key unless another service holds it; it returns that
// service's key, or "".
func (p *nodePorts) claim(key string, port int32) (holder string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h, ok := p.holder[port]; ok && h != key {
		return h
	}
	p.holdLocked(key, port)
	return ""
}

func (p *nodePorts) holdLocked(key string, port int32) {
	p.holder[port] = key
	if p.byKey[key] == nil {
		p.byKey[key] = map[int32]bool{}
	}
	p.byKey[key][port] = true
}

// pick gives key a port: one it already holds and does not use (what an
// earlier, failed write of it took), else a free one at random above the
// range's static band first, as Kubernetes does. False when none is free.
func (p *nodePorts) pick(key string, using map[int32]bool) (int32, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for port := range p.byKey[key] {
		if !using[port] {
			return port, true
		}
	}
	size := p.r.Size()
	band := min(max(16, size/32), 128, size)
	for _, b := range [][2]int{{band, size - 1}, {0, band - 1}} {
		n := b[1] - b[0] + 1
		if n <= 0 {
			continue
		}
		start := rand.IntN(n)
		for i := range n {
			port := p.r.First + int32(b[0]+(start+i)%n)
			if _, taken := p.holder[port]; !taken {
				p.holdLocked(key, port)
				return port, true
			}
		}
	}
	return 0, false
}

// keepOnly gives back key's ports that are not in keep; true when any was.
func (p *nodePorts) keepOnly(key string, keep map[int32]bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	released := false
	for port := range p.byKey[key] {
		if !keep[port] {
			delete(p.byKey[key], port)
			if p.holder[port] == key {
				delete(p.holder, port)
			}
			released = true
		}
	}
	if len(p.byKey[key]) == 0 {
		delete(p.byKey, key)
	}
	return released
}

// releaseAll gives back every port of key; true when it held any.
func (p *nodePorts) releaseAll(key string) bool { return p.keepOnly(key, nil) }
