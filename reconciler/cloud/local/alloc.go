package local

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// allocate picks the service's address of each IP family it has: the one
// of spec.loadBalancerIP, else the one it holds, else the lowest free one.
func (lb *loadBalancer) allocate(svc *corev1.Service, owners map[netip.Addr]string) ([]netip.Addr, error) {
	key := keyOf(svc)
	mine := func(a netip.Addr) bool { o := owners[a]; return o == "" || o == key }
	have := map[bool]netip.Addr{} // by "is IPv6"
	for _, a := range append(slices.Clone(lb.held[key]), statusAddrs(svc)...) {
		if _, ok := have[a.Is6()]; !ok && lb.pool.contains(a) && mine(a) {
			have[a.Is6()] = a
		}
	}
	want, err := requestedIP(svc)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, v6 := range families(svc) {
		a, err := lb.pick(svc, v6, have[v6], want, owners)
		if err != nil {
			return nil, err
		}
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out, nil
}

// pick is the service's address of one family; invalid, with no error, for
// an IPv6 address the pool cannot give and the service does not require.
func (lb *loadBalancer) pick(svc *corev1.Service, v6 bool, have, want netip.Addr, owners map[netip.Addr]string) (netip.Addr, error) {
	key := keyOf(svc)
	fam := familyName(v6)
	if want.IsValid() && want.Is6() == v6 {
		if !lb.pool.contains(want) {
			return netip.Addr{}, fmt.Errorf("%w: spec.loadBalancerIP %s is not in the load balancer pool %s: pick an address of the pool, or none", ErrNotInPool, want, lb.pool)
		}
		if o := owners[want]; o != "" && o != key {
			return netip.Addr{}, fmt.Errorf("%w: spec.loadBalancerIP %s is held by service %s: pick another address, or none", ErrAddressInUse, want, o)
		}
		return want, nil
	}
	if have.IsValid() {
		return have, nil
	}
	if !lb.pool.hasFamily(v6) {
		if v6 && (svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicyRequireDualStack) {
			return netip.Addr{}, nil
		}
		return netip.Addr{}, fmt.Errorf("%w: the load balancer pool %s has no %s address for service %s: add an %s range to --lb-pool", ErrPoolExhausted, lb.pool, fam, key, fam)
	}
	a, ok := lb.pool.pick(v6, func(a netip.Addr) bool { o := owners[a]; return o != "" && o != key })
	if !ok {
		return netip.Addr{}, fmt.Errorf("%w: no free %s address left in the load balancer pool %s for service %s: widen --lb-pool, or delete a LoadBalancer service", ErrPoolExhausted, fam, lb.pool, key)
	}
	return a, nil
}

func familyName(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// families are the service's IP families, as "is IPv6", in its order, with
// IPv4 first when it does not list it: keelson's service network is IPv4.
func families(svc *corev1.Service) []bool {
	var out []bool
	if !slices.Contains(svc.Spec.IPFamilies, corev1.IPv4Protocol) {
		out = append(out, false)
	}
	for _, f := range svc.Spec.IPFamilies {
		v6 := f == corev1.IPv6Protocol
		if (f == corev1.IPv4Protocol || v6) && !slices.Contains(out, v6) {
			out = append(out, v6)
		}
	}
	return out
}

// hostAddresses are the nodes' addresses for a service, once no service
// created before it serves one of its ports.
func (lb *loadBalancer) hostAddresses(svc *corev1.Service, nodes []*corev1.Node, all []*corev1.Service) ([]netip.Addr, error) {
	for _, o := range all {
		if keyOf(o) == keyOf(svc) || !lb.counts(o) || !earlier(o, svc) {
			continue
		}
		if port, ok := sharedPort(svc, o); ok {
			return nil, fmt.Errorf("%w: port %s is served on the nodes' addresses by service %s, made before %s: give one of them another port, or run keelson server with --lb-pool",
				ErrPortInUse, port, keyOf(o), keyOf(svc))
		}
	}
	return nodeAddresses(svc, nodes)
}

func sharedPort(a, b *corev1.Service) (string, bool) {
	proto := func(p corev1.Protocol) corev1.Protocol {
		if p == "" {
			return corev1.ProtocolTCP
		}
		return p
	}
	for _, p := range a.Spec.Ports {
		for _, q := range b.Spec.Ports {
			if p.Port == q.Port && proto(p.Protocol) == proto(q.Protocol) {
				return fmt.Sprintf("%d/%s", p.Port, proto(p.Protocol)), true
			}
		}
	}
	return "", false
}

// nodeAddresses lists each node's ExternalIP addresses, or its InternalIP
// ones when it has none: IPv4, and IPv6 for a service that has that family.
// With spec.loadBalancerIP, that one, when a node has it.
func nodeAddresses(svc *corev1.Service, nodes []*corev1.Node) ([]netip.Addr, error) {
	v6 := slices.Contains(families(svc), true)
	var out []netip.Addr
	for _, n := range nodes {
		typ := corev1.NodeInternalIP
		if slices.ContainsFunc(n.Status.Addresses, func(a corev1.NodeAddress) bool { return a.Type == corev1.NodeExternalIP }) {
			typ = corev1.NodeExternalIP
		}
		for _, na := range n.Status.Addresses {
			a, err := netip.ParseAddr(na.Address)
			if err != nil || na.Type != typ || a.Is6() && !a.Is4In6() && !v6 {
				continue
			}
			if a = a.Unmap(); !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	want, err := requestedIP(svc)
	switch {
	case err != nil:
		return nil, err
	case want.IsValid() && !slices.Contains(out, want):
		return nil, fmt.Errorf("%w: spec.loadBalancerIP %s is not an address of a node serving the load balancer (without --lb-pool the nodes' addresses are used)", ErrNotInPool, want)
	case want.IsValid():
		out = []netip.Addr{want}
	case len(out) == 0:
		return nil, fmt.Errorf("%w: none of the %d nodes serving load balancers has an address", ErrNoNodeAddress, len(nodes))
	}
	return out, nil
}
