package servicenet

import (
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults, as DESIGN.md sets them.
const (
	DefaultServiceCIDR   = "10.43.0.0/16"
	DefaultNodePortRange = "30000-32767"
	DefaultClusterDomain = "cluster.local"
)

// The services the control plane makes itself, outside Git.
const (
	// APIServiceNamespace/APIServiceName is the API, on the CIDR's first
	// address.
	APIServiceNamespace = "default"
	APIServiceName      = "kubernetes"
	// DNSServiceNamespace/DNSServiceName is cluster DNS, on the CIDR's
	// tenth address, under the name CoreDNS's service has in Kubernetes.
	DNSServiceNamespace = "kube-system"
	DNSServiceName      = "kube-dns"
)

// CIDR is a service CIDR: the IPv4 block cluster IPs are allocated from.
type CIDR struct {
	p netip.Prefix
}

// ParseCIDR parses an IPv4 service CIDR of at least 16 addresses ("/28"),
// so that the reserved addresses fit in it.
func ParseCIDR(s string) (CIDR, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return CIDR{}, fmt.Errorf("service CIDR %q: %w", s, err)
	}
	if !p.Addr().Is4() {
		return CIDR{}, fmt.Errorf("service CIDR %q: keelson's service network is IPv4 only", s)
	}
	if p.Bits() > 28 {
		return CIDR{}, fmt.Errorf("service CIDR %q: too small, at least a /28 is needed (the kubernetes and DNS services take the 1st and 10th addresses)", s)
	}
	return CIDR{p: p.Masked()}, nil
}

// Prefix returns the block.
func (c CIDR) Prefix() netip.Prefix { return c.p }

// String returns the block in CIDR notation.
func (c CIDR) String() string { return c.p.String() }

// IsZero reports whether c is the zero CIDR (none parsed).
func (c CIDR) IsZero() bool { return !c.p.IsValid() }

// Contains reports whether a is in the block.
func (c CIDR) Contains(a netip.Addr) bool { return c.p.Contains(a) }

// Size is the number of addresses that can be allocated: every address of the
// block but the network and broadcast addresses.
func (c CIDR) Size() int {
	bits := c.p.Addr().BitLen() - c.p.Bits()
	if bits >= 31 {
		return 1<<31 - 2
	}
	return 1<<bits - 2
}

// Nth returns the address at offset n from the network address: Nth(1) is
// the first allocatable one. n must be in [1, Size()].
func (c CIDR) Nth(n int) netip.Addr {
	v := new(big.Int).SetBytes(c.p.Addr().AsSlice())
	v.Add(v, big.NewInt(int64(n)))
	a, _ := netip.AddrFromSlice(v.FillBytes(make([]byte, 4)))
	return a
}

// Offset is the inverse of Nth: the offset of a in the block, and whether a
// is allocatable (in the block, neither network nor broadcast).
func (c CIDR) Offset(a netip.Addr) (int, bool) {
	if !a.Is4() || !c.p.Contains(a) {
		return 0, false
	}
	off := int(new(big.Int).Sub(new(big.Int).SetBytes(a.AsSlice()), new(big.Int).SetBytes(c.p.Addr().AsSlice())).Int64())
	return off, off >= 1 && off <= c.Size()
}

// APIServerIP is the kubernetes service's address: the first one.
func (c CIDR) APIServerIP() netip.Addr { return c.Nth(1) }

// DNSIP is cluster DNS's address: the tenth one, as in Kubernetes and k3s.
func (c CIDR) DNSIP() netip.Addr { return c.Nth(10) }

// StaticBand is how many addresses at the start of the block are kept for
// cluster IPs written in Git: the allocator hands these out only when the
// rest is full, so that an address chosen in a manifest is rarely taken by
// then. Kubernetes' rule: a sixteenth of the block, at least 16, at most 256.
func (c CIDR) StaticBand() int {
	return min(max(16, c.Size()/16), 256)
}

// PortRange is the node port range, both ends included.
type PortRange struct {
	First, Last int32
}

// ParsePortRange parses "30000-32767".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	first, err1 := strconv.ParseInt(lo, 10, 32)
	last, err2 := strconv.ParseInt(hi, 10, 32)
	if !ok || err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return PortRange{}, fmt.Errorf("node port range %q: want FIRST-LAST with 1 <= FIRST <= LAST <= 65535", s)
	}
	return PortRange{First: int32(first), Last: int32(last)}, nil
}

// Contains reports whether p is in the range.
func (r PortRange) Contains(p int32) bool { return p >= r.First && p <= r.Last }

// Size is the number of ports in the range.
func (r PortRange) Size() int { return int(r.Last-r.First) + 1 }

// String returns "FIRST-LAST".
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// HasNodePorts reports whether a Service's ports have node ports at all:
// those of type NodePort or LoadBalancer. A service of another type has
// none, and one that changes to it gives its node ports back.
func HasNodePorts(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// AllocatesNodePorts reports whether a Service's ports without a node port
// get one from the allocator: type NodePort, and LoadBalancer unless
// allocateLoadBalancerNodePorts is false (then it keeps those it has).
func AllocatesNodePorts(s *corev1.Service) bool {
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		return s.Spec.AllocateLoadBalancerNodePorts == nil || *s.Spec.AllocateLoadBalancerNodePorts
	}
	return s.Spec.Type == corev1.ServiceTypeNodePort
}

// How cluster IPs are reserved: one IPAddress object (networking.k8s.io/v1,
// cluster-scoped) per address in use, named by the address, with
// spec.parentRef naming the Service that holds it, as Kubernetes does since
// 1.33. Creating it is the reservation: etcd refuses a second one of the same
// name, so no address is ever given twice, and it is created in the same
// transaction as the Service's spec.clusterIP.
const (
	// LabelIPAddressManagedBy and IPAddressManagedBy mark the IPAddress
	// objects keelson's allocator made.
	LabelIPAddressManagedBy = "ipaddress.kubernetes.io/managed-by"
	IPAddressManagedBy      = "ipallocator.keelson.dev"
	// LabelIPFamily is the family of an IPAddress ("IPv4").
	LabelIPFamily = "ipaddress.kubernetes.io/ip-family"
	// ServiceCIDRName is the ServiceCIDR object describing the service CIDR.
	ServiceCIDRName = "kubernetes"
)

// Conditions keelson's controllers put in a Service's status.conditions; each
// controller writes only its own type, by compare-and-swap.
const (
	// ConditionIPAllocated is True when the service holds its cluster IP and
	// node ports; False (reasons below) when one written in Git is taken or
	// the range is full.
	ConditionIPAllocated = "keelson.dev/IPAllocated"
	// ConditionEndpointsReady is True when the service has ready endpoints;
	// False says why not (no pod selected, a named target port no selected
	// pod defines, none ready).
	ConditionEndpointsReady = "keelson.dev/EndpointsReady"
	// ConditionLoadBalancer is the load balancer controller's, on services
	// of type LoadBalancer it serves: True once the cloud provider gave the
	// service its addresses (status.loadBalancer), False with a reason while
	// it cannot (ReasonNoCloudProvider, ReasonLoadBalancerFailed).
	ConditionLoadBalancer = "keelson.dev/LoadBalancer"
)

// Reasons of ConditionLoadBalancer.
const (
	// ReasonLoadBalancerReady: the provider made the load balancer.
	ReasonLoadBalancerReady = "LoadBalancerReady"
	// ReasonNoCloudProvider: the control plane runs without a cloud
	// provider, or with one that makes no load balancers.
	ReasonNoCloudProvider = "NoCloudProvider"
	// ReasonLoadBalancerFailed: the provider failed (the message says how);
	// the controller retries with back-off.
	ReasonLoadBalancerFailed = "SyncLoadBalancerFailed"
)

// Labels of EndpointSlices, as Kubernetes names them.
const (
	// LabelServiceName names the Service an EndpointSlice belongs to.
	LabelServiceName = "kubernetes.io/service-name"
	// LabelManagedBy names the controller that maintains an EndpointSlice.
	LabelManagedBy = "endpointslice.kubernetes.io/managed-by"
	// EndpointSliceManagedBy is the EndpointSlice controller's value of
	// LabelManagedBy, EndpointSliceMirroringManagedBy the mirroring
	// controller's (slices of selector-less services' Endpoints), and
	// ControlPlaneManagedBy the control plane's own (the kubernetes and
	// kube-dns services).
	EndpointSliceManagedBy          = "endpointslice-controller.keelson.dev"
	EndpointSliceMirroringManagedBy = "endpointslicemirroring-controller.keelson.dev"
	ControlPlaneManagedBy           = "control-plane.keelson.dev"
)

// AddressRefused reports whether the allocator refused a Service's address
// or node ports (its ConditionIPAllocated is False: an address written in
// Git that another service holds, one outside the ranges). Such a service's
// spec names what is not its own, so the node proxy programs nothing for it
// and cluster DNS gives it no address, rather than serve two services on one
// address.
func AddressRefused(s *corev1.Service) bool {
	c := meta.FindStatusCondition(s.Status.Conditions, ConditionIPAllocated)
	return c != nil && c.Status == metav1.ConditionFalse
}
