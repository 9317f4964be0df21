package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/keelson/keelson/internal/servicenet"
)

// defaultAffinitySeconds is how long a ClientIP affinity lasts when the
// service does not say (Kubernetes' default: three hours).
const defaultAffinitySeconds = 10800

// servicePort is one port of a service as the proxy programs it: a
// (cluster IP, protocol, port) and maybe a node port.
type servicePort struct {
	ns, name string
	portName string
	proto    corev1.Protocol
	ip       netip.Addr
	port     uint16
	nodePort uint16
	// loadBalancerIPs are the IPv4 addresses of status.loadBalancer the
	// node accepts the port's traffic on, as it does its node port.
	loadBalancerIPs []netip.Addr
	// affinity is the ClientIP affinity timeout in seconds, 0 without one.
	affinity      int32
	internalLocal bool
	externalLocal bool
}

// id is the port's readable identity, as it appears in chain names:
// namespace/name/protocol/portname.
func (sp *servicePort) id() string {
	return sp.ns + "/" + sp.name + "/" + strings.ToLower(string(sp.proto)) + "/" + sp.portName
}

// endpoint is one backend of a service port.
type endpoint struct {
	ip          netip.Addr
	port        uint16
	ready       bool
	serving     bool
	terminating bool
	local       bool
}

func (e endpoint) String() string { return netip.AddrPortFrom(e.ip, e.port).String() }

// servicePorts returns the ports of svc the proxy programs: none for a
// headless or ExternalName service, or one without an IPv4 cluster IP yet.
// A port it cannot use is an error that names it; the other ports are still
// returned.
func servicePorts(svc *corev1.Service) ([]servicePort, error) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || servicenet.AddressRefused(svc) {
		return nil, nil
	}
	ip, ok, err := clusterIPv4(svc)
	if err != nil || !ok {
		return nil, err
	}
	affinity := int32(0)
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = defaultAffinitySeconds
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			affinity = *c.ClientIP.TimeoutSeconds
		}
	}
	nodePorts := servicenet.HasNodePorts(svc)
	lbIPs, bad := loadBalancerIPs(svc)
	var out []servicePort
	for i, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if _, ok := protoNumbers[proto]; !ok {
			bad = append(bad, fmt.Sprintf("spec.ports[%d]: protocol %q is not TCP, UDP or SCTP", i, p.Protocol))
			continue
		}
		if p.Port < 1 || p.Port > 65535 {
			bad = append(bad, fmt.Sprintf("spec.ports[%d]: port %d is out of range", i, p.Port))
			continue
		}
		sp := servicePort{
			ns: svc.Namespace, name: svc.Name, portName: p.Name, proto: proto, ip: ip, port: uint16(p.Port),
			affinity:        affinity,
			internalLocal:   svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
			externalLocal:   svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
			loadBalancerIPs: lbIPs,
		}
		if nodePorts && p.NodePort != 0 {
			if p.NodePort < 1 || p.NodePort > 65535 {
				bad = append(bad, fmt.Sprintf("spec.ports[%d]: node port %d is out of range", i, p.NodePort))
			} else {
				sp.nodePort = uint16(p.NodePort)
			}
		}
		out = append(out, sp)
	}
	if len(bad) > 0 {
		err = fmt.Errorf("service %s/%s: %s", svc.Namespace, svc.Name, strings.Join(bad, "; "))
	}
	return out, err
}

// loadBalancerIPs are the IPv4 addresses the load balancer controller gave
// a service of type LoadBalancer (status.loadBalancer.ingress), each once.
// An address whose ipMode is Proxy belongs to a load balancer that proxies
// itself to the node ports: the node does not take its traffic.
func loadBalancerIPs(svc *corev1.Service) ([]netip.Addr, []string) {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil, nil
	}
	var out []netip.Addr
	var bad []string
	for i, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP == "" || in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeProxy {
			continue
		}
		a, err := netip.ParseAddr(in.IP)
		if err != nil {
			bad = append(bad, fmt.Sprintf("status.loadBalancer.ingress[%d].ip %q is not an IP address", i, in.IP))
			continue
		}
		if a.Is4() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, bad
}

// clusterIPv4 returns the service's IPv4 cluster IP; ok is false for a
// headless service or one that has none yet.
func clusterIPv4(svc *corev1.Service) (netip.Addr, bool, error) {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if s == "" || s == corev1.ClusterIPNone {
			return netip.Addr{}, false, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("service %s/%s: spec.clusterIP %q: not an IP address", svc.Namespace, svc.Name, s)
		}
		if a.Is4() {
			return a, true, nil
		}
	}
	return netip.Addr{}, false, nil
}

// endpointsFor collects the IPv4 endpoints the slices give sp, each once (a
// pod listed in two slices while they are rewritten is ready when either says
// so), in a stable order.
func endpointsFor(sp *servicePort, slices []*discoveryv1.EndpointSlice, nodeName string) []endpoint {
	seen := map[netip.AddrPort]int{}
	var out []endpoint
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port, ok := slicePort(s, sp)
		if !ok {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(e.Addresses[0])
			if err != nil || !ip.Is4() {
				continue
			}
			ep := endpoint{ip: ip, port: port, local: e.NodeName != nil && *e.NodeName == nodeName}
			// Unset ready and serving mean true (discovery/v1).
			ep.ready = e.Conditions.Ready == nil || *e.Conditions.Ready
			ep.serving = e.Conditions.Serving == nil || *e.Conditions.Serving
			ep.terminating = e.Conditions.Terminating != nil && *e.Conditions.Terminating
			key := netip.AddrPortFrom(ip, port)
			if i, dup := seen[key]; dup {
				out[i].ready = out[i].ready || ep.ready
				out[i].serving = out[i].serving || ep.serving
				out[i].terminating = out[i].terminating && ep.terminating
				out[i].local = out[i].local || ep.local
				continue
			}
			seen[key] = len(out)
			out = append(out, ep)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return netip.AddrPortFrom(out[i].ip, out[i].port).Compare(netip.AddrPortFrom(out[j].ip, out[j].port)) < 0
	})
	return out
}

// slicePort finds the port of the slice that serves sp: same name, same
// protocol.
func slicePort(s *discoveryv1.EndpointSlice, sp *servicePort) (uint16, bool) {
	for _, p := range s.Ports {
		name, proto := "", corev1.ProtocolTCP
		if p.Name != nil {
			name = *p.Name
		}
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if name == sp.portName && proto == sp.proto && p.Port != nil && *p.Port > 0 && *p.Port <= 65535 {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}

// usable picks the endpoints traffic goes to: the ready ones, or when none
// is ready the ones still serving while they terminate, as Kubernetes does so
// that a rolling update of a single pod does not drop connections.
func usable(eps []endpoint) []endpoint {
	var ready, fallback []endpoint
	for _, e := range eps {
		switch {
		case e.ready:
			ready = append(ready, e)
		case e.serving && e.terminating:
			fallback = append(fallback, e)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return fallback
}

// categorize splits a port's endpoints into those for cluster-wide traffic
// and those on this node, each picked by usable.
func categorize(eps []endpoint) (cluster, local []endpoint) {
	var onNode []endpoint
	for _, e := range eps {
		if e.local {
			onNode = append(onNode, e)
		}
	}
	return usable(eps), usable(onNode)
}

// sliceService returns the namespace/name of the service a slice belongs to.
func sliceService(s *discoveryv1.EndpointSlice) (string, bool) {
	name := s.Labels[servicenet.LabelServiceName]
	if name == "" {
		return "", false
	}
	return s.Namespace + "/" + name, true
}
