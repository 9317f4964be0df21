package clusterdns

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keelson/keelson/internal/servicenet"
)

// svcKind is how a service's name resolves.
type svcKind uint8

const (
	kindClusterIP    svcKind = iota // its cluster IPs
	kindHeadless                    // its ready endpoints' addresses
	kindExternalName                // a CNAME
)

// port is a named port of a service or an EndpointSlice.
type port struct {
	name  string // lower case; "" when unnamed
	proto string // "_tcp", "_udp", "_sctp": as the SRV label spells it
	port  uint16
}

// service is what DNS needs of a Service.
type service struct {
	kind            svcKind
	ips             []netip.Addr
	ports           []port
	externalName    string // fully qualified, lower case
	publishNotReady bool
}

// endpoint is what DNS needs of one EndpointSlice endpoint.
type endpoint struct {
	addrs    []netip.Addr
	hostname string
	ready    bool
}

// slice is what DNS needs of an EndpointSlice.
type slice struct {
	owner     svcKey
	endpoints []endpoint
	ports     []port
}

// target is one endpoint as DNS names it: <label>.<svc>.<ns>.svc.<zone>,
// label being its hostname or its dashed address.
type target struct {
	label string
	addrs []netip.Addr
	ports []port
}

// reverse is one PTR record a view contributes.
type reverse struct {
	addr netip.Addr
	name string // relative to the zone: "web.default.svc"
}

// view holds the records of one service, built whole at every change of the
// service or its slices, and read without locks by queries.
type view struct {
	kind         svcKind
	name         string // relative to the zone: "web.default.svc"
	addrs        []netip.Addr
	ports        []port
	externalName string
	targets      []*target          // ready endpoints, in slice order
	hosts        map[string]*target // by label
	protos       map[string]bool    // SRV protocol labels in use ("_tcp")
	ptrs         []reverse
}

// serviceFrom extracts what DNS needs from a Service.
func serviceFrom(s *corev1.Service) *service {
	out := &service{publishNotReady: s.Spec.PublishNotReadyAddresses}
	switch {
	case s.Spec.Type == corev1.ServiceTypeExternalName:
		out.kind = kindExternalName
		out.externalName = strings.ToLower(dns.Fqdn(s.Spec.ExternalName))
		if _, ok := dns.IsDomainName(out.externalName); !ok || out.externalName == "." {
			// No usable target: the name exists with no records.
			out.kind, out.externalName = kindClusterIP, ""
		}
	case s.Spec.ClusterIP == corev1.ClusterIPNone:
		out.kind = kindHeadless
	case servicenet.AddressRefused(s):
		// The name exists, with no address: the one in its spec is not its own.
	default:
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip); err == nil {
				out.ips = append(out.ips, a.Unmap())
			}
		}
	}
	for _, p := range s.Spec.Ports {
		out.ports = append(out.ports, port{name: strings.ToLower(p.Name), proto: protoLabel(string(p.Protocol)), port: uint16(p.Port)})
	}
	return out
}

// sliceFrom extracts what DNS needs from an EndpointSlice; nil when it
// belongs to no service or holds no addresses DNS can serve.
func sliceFrom(es *discoveryv1.EndpointSlice) *slice {
	svc := es.Labels[servicenet.LabelServiceName]
	if svc == "" || es.AddressType == discoveryv1.AddressTypeFQDN {
		return nil
	}
	out := &slice{owner: svcKey{strings.ToLower(es.Namespace), strings.ToLower(svc)}}
	for _, p := range es.Ports {
		if p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
			continue
		}
		var name, proto string
		if p.Name != nil {
			name = strings.ToLower(*p.Name)
		}
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		out.ports = append(out.ports, port{name: name, proto: protoLabel(proto), port: uint16(*p.Port)})
	}
	for _, e := range es.Endpoints {
		ep := endpoint{ready: e.Conditions.Ready == nil || *e.Conditions.Ready}
		for _, a := range e.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				ep.addrs = append(ep.addrs, ip.Unmap())
			}
		}
		if e.Hostname != nil && len(validation.IsDNS1123Label(*e.Hostname)) == 0 {
			ep.hostname = strings.ToLower(*e.Hostname)
		}
		if len(ep.addrs) > 0 {
			out.endpoints = append(out.endpoints, ep)
		}
	}
	return out
}

func protoLabel(p string) string {
	if p == "" {
		return "_tcp"
	}
	return "_" + strings.ToLower(p)
}

// dashed writes an address as one DNS label: 10-42-0-5, 2001-db8--1.
func dashed(a netip.Addr) string {
	s := a.String()
	if a.Is4() {
		return strings.ReplaceAll(s, ".", "-")
	}
	return strings.ReplaceAll(s, ":", "-")
}

// buildView computes a service's records from the service and its slices.
// Endpoints are named for every kind of service, as CoreDNS names them, so
// that the reverse record of a pod IP resolves forward again.
func buildView(k svcKey, s *service, sl map[svcKey]*slice) *view {
	v := &view{
		kind: s.kind, name: k.name + "." + k.ns + ".svc",
		ports: s.ports, externalName: s.externalName,
		hosts: map[string]*target{}, protos: map[string]bool{},
	}
	for _, p := range s.ports {
		v.protos[p.proto] = true
	}
	if s.kind == kindClusterIP {
		v.addrs = s.ips
		for _, a := range s.ips {
			v.ptrs = append(v.ptrs, reverse{addr: a, name: v.name})
		}
	}
	// Slices in name order, so answers do not change order between rebuilds.
	keys := make([]svcKey, 0, len(sl))
	for sk := range sl {
		keys = append(keys, sk)
	}
	slices.SortFunc(keys, func(a, b svcKey) int { return strings.Compare(a.name, b.name) })
	seen := map[netip.Addr]bool{}
	for _, sk := range keys {
		for _, e := range sl[sk].endpoints {
			if (!e.ready && !s.publishNotReady) || seen[e.addrs[0]] {
				continue
			}
			v.addTarget(e, sl[sk].ports, seen)
		}
	}
	return v
}

// addTarget names one ready endpoint; two endpoints of one hostname share
// the name.
func (v *view) addTarget(e endpoint, ports []port, seen map[netip.Addr]bool) {
	label := e.hostname
	if label == "" {
		label = dashed(e.addrs[0])
	}
	t := v.hosts[label]
	if t == nil {
		t = &target{label: label, ports: ports}
		v.hosts[label] = t
		v.targets = append(v.targets, t)
	}
	for _, a := range e.addrs {
		if seen[a] {
			continue
		}
		seen[a] = true
		t.addrs = append(t.addrs, a)
		v.ptrs = append(v.ptrs, reverse{addr: a, name: label + "." + v.name})
		if v.kind == kindHeadless {
			v.addrs = append(v.addrs, a)
		}
	}
	if v.kind == kindHeadless {
		for _, p := range ports {
			v.protos[p.proto] = true
		}
	}
}
