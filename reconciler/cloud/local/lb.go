package local

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// loadBalancer gives services addresses of the pool, or lists the nodes'
// addresses when there is no pool. Its state is what it gave since it
// started (held) on top of what the services' status says (services):
// after a restart the status is all there is, and what it gave a moment ago
// may not be in the status yet.
type loadBalancer struct {
	pool     *pool // nil: the nodes' addresses
	services func() []*corev1.Service
	log      *slog.Logger

	mu sync.Mutex
	// held are the addresses given or listed, by namespace/name.
	held map[string][]netip.Addr
	// released are the services whose load balancer was deleted: the
	// addresses their status still shows (until the controller clears
	// it) are free.
	released map[string]types.UID
}

func newLoadBalancer(p *pool, services func() []*corev1.Service, log *slog.Logger) *loadBalancer {
	return &loadBalancer{pool: p, services: services, log: log, held: map[string][]netip.Addr{}, released: map[string]types.UID{}}
}

// GetLoadBalancer returns the addresses held for the service, or those of
// its status (of the pool, when there is one).
func (lb *loadBalancer) GetLoadBalancer(_ context.Context, svc *corev1.Service) (*corev1.LoadBalancerStatus, bool, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	key := keyOf(svc)
	if addrs, ok := lb.held[key]; ok {
		return statusOf(addrs), true, nil
	}
	if uid, ok := lb.released[key]; ok && uid == svc.UID {
		return nil, false, nil
	}
	var addrs []netip.Addr
	for _, a := range statusAddrs(svc) {
		if lb.pool == nil || lb.pool.contains(a) {
			addrs = append(addrs, a)
		}
	}
	return statusOf(addrs), len(addrs) > 0, nil
}

// EnsureLoadBalancer gives the service its addresses. Errors:
// ErrPoolExhausted, ErrNotInPool, ErrAddressInUse (with a pool);
// ErrPortInUse, ErrNotInPool, ErrNoNodeAddress (without).
func (lb *loadBalancer) EnsureLoadBalancer(_ context.Context, svc *corev1.Service, nodes []*corev1.Node) (*corev1.LoadBalancerStatus, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	key := keyOf(svc)
	delete(lb.released, key)
	all := lb.refresh()
	var addrs []netip.Addr
	var err error
	if lb.pool != nil {
		addrs, err = lb.allocate(svc, lb.owners(all))
	} else {
		addrs, err = lb.hostAddresses(svc, nodes, all)
	}
	if err != nil {
		return nil, err
	}
	if !slices.Equal(lb.held[key], addrs) {
		lb.log.Info("load balancer addresses", "service", key, "addresses", addrs)
	}
	lb.held[key] = addrs
	return statusOf(addrs), nil
}

// UpdateLoadBalancer lists the nodes' addresses again when there is no
// pool; a pool's addresses do not depend on the nodes. Errors:
// ErrNoNodeAddress, ErrNotInPool.
func (lb *loadBalancer) UpdateLoadBalancer(_ context.Context, svc *corev1.Service, nodes []*corev1.Node) error {
	if lb.pool != nil {
		return nil
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	addrs, err := nodeAddresses(svc, nodes)
	if err != nil {
		return err
	}
	lb.held[keyOf(svc)] = addrs
	return nil
}

// EnsureLoadBalancerDeleted frees the service's addresses.
func (lb *loadBalancer) EnsureLoadBalancerDeleted(_ context.Context, svc *corev1.Service) error {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	key := keyOf(svc)
	if addrs, ok := lb.held[key]; ok && lb.pool != nil {
		lb.log.Info("load balancer addresses freed", "service", key, "addresses", addrs)
	}
	delete(lb.held, key)
	lb.released[key] = svc.UID
	return nil
}

// refresh lists the services and forgets what it held for those that are
// gone, and the release of those that are gone or were made anew.
func (lb *loadBalancer) refresh() []*corev1.Service {
	if lb.services == nil {
		return nil
	}
	all := lb.services()
	live := make(map[string]types.UID, len(all))
	for _, s := range all {
		live[keyOf(s)] = s.UID
	}
	for k := range lb.held {
		if _, ok := live[k]; !ok {
			delete(lb.held, k)
		}
	}
	for k, uid := range lb.released {
		if live[k] != uid {
			delete(lb.released, k)
		}
	}
	return all
}

// owners maps each address of the pool in use to the service holding it:
// the one this provider gave it to, else the first created of those whose
// status shows it.
func (lb *loadBalancer) owners(all []*corev1.Service) map[netip.Addr]string {
	first := map[netip.Addr]*corev1.Service{}
	for _, s := range all {
		if !lb.counts(s) {
			continue
		}
		for _, a := range statusAddrs(s) {
			if cur, ok := first[a]; lb.pool.contains(a) && (!ok || earlier(s, cur)) {
				first[a] = s
			}
		}
	}
	out := make(map[netip.Addr]string, len(first))
	for a, s := range first {
		out[a] = keyOf(s)
	}
	for k, addrs := range lb.held {
		for _, a := range addrs {
			out[a] = k
		}
	}
	return out
}

// counts reports whether s is a service of this provider whose status
// holds addresses.
func (lb *loadBalancer) counts(s *corev1.Service) bool {
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.LoadBalancerClass != nil {
		return false
	}
	uid, released := lb.released[keyOf(s)]
	return !released || uid != s.UID
}

func keyOf(s *corev1.Service) string { return s.Namespace + "/" + s.Name }

// earlier orders services by creation, then namespace/name.
func earlier(a, b *corev1.Service) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return keyOf(a) < keyOf(b)
}

func statusAddrs(s *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range s.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func statusOf(addrs []netip.Addr) *corev1.LoadBalancerStatus {
	st := &corev1.LoadBalancerStatus{}
	for _, a := range addrs {
		st.Ingress = append(st.Ingress, corev1.LoadBalancerIngress{IP: a.String()})
	}
	return st
}

// requestedIP is spec.loadBalancerIP; invalid when empty.
func requestedIP(svc *corev1.Service) (netip.Addr, error) {
	if svc.Spec.LoadBalancerIP == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(svc.Spec.LoadBalancerIP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: spec.loadBalancerIP %q is not an IP address", ErrNotInPool, svc.Spec.LoadBalancerIP)
	}
	return a.Unmap(), nil
}
