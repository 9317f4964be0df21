package reconciler

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// endpointGroup is the endpoints a service wants under one port set.
type endpointGroup struct {
	ports []discoveryv1.EndpointPort
	eps   map[string]discoveryv1.Endpoint // by endpointKey
}

// endpointSet is a service's wanted endpoints, grouped by portsKey.
type endpointSet map[string]*endpointGroup

func (s endpointSet) add(ports []discoveryv1.EndpointPort, ep discoveryv1.Endpoint) {
	pk := portsKey(ports)
	g := s[pk]
	if g == nil {
		g = &endpointGroup{ports: ports, eps: map[string]discoveryv1.Endpoint{}}
		s[pk] = g
	}
	k := endpointKey(ep)
	if _, dup := g.eps[k]; !dup {
		g.eps[k] = ep
	}
}

// endpointSummary is what the EndpointsReady condition is decided from.
type endpointSummary struct {
	selected  int      // pods the selector matches, finished ones aside
	ready     int      // endpoints with ready=true
	unmatched []string // one sentence per named target port no selected pod defines
}

// portsKey identifies a port set: slices hold endpoints of one set only.
func portsKey(ports []discoveryv1.EndpointPort) string {
	var b strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&b, "%s/%s/%d/%s;", ptr.Deref(p.Name, ""), ptr.Deref(p.Protocol, ""), ptr.Deref(p.Port, 0), ptr.Deref(p.AppProtocol, ""))
	}
	return b.String()
}

// endpointKey identifies an endpoint across versions: its addresses and the
// object it stands for. Anything else of it may change in place.
func endpointKey(e discoveryv1.Endpoint) string {
	k := strings.Join(e.Addresses, ",")
	if r := e.TargetRef; r != nil {
		k += "|" + r.Kind + "/" + r.Namespace + "/" + r.Name
	}
	return k
}

// resolvePorts gives the port set of one pod for the service: each service
// port whose target port the pod resolves, in the service's order. found[i]
// tells whether port i was resolved.
func resolvePorts(svc *corev1.Service, p *corev1.Pod) (ports []discoveryv1.EndpointPort, found []bool) {
	found = make([]bool, len(svc.Spec.Ports))
	for i, sp := range svc.Spec.Ports {
		n, ok := resolveTargetPort(p, sp)
		if !ok {
			continue
		}
		found[i] = true
		ports = append(ports, discoveryv1.EndpointPort{
			Name: ptr.To(sp.Name), Protocol: ptr.To(protocolOr(sp.Protocol)), Port: ptr.To(n), AppProtocol: sp.AppProtocol,
		})
	}
	return ports, found
}

// resolveTargetPort resolves a service port's targetPort for a pod: a number as it
// is (none: the service port), a name through the ports the pod's
// containers (and restartable init containers) declare with that name and
// the same protocol.
func resolveTargetPort(p *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal != 0 {
			return tp.IntVal, true
		}
		return sp.Port, true
	}
	if tp.StrVal == "" {
		return sp.Port, true
	}
	proto := protocolOr(sp.Protocol)
	match := func(cs []corev1.Container, sidecarsOnly bool) (int32, bool) {
		for _, c := range cs {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, cp := range c.Ports {
				if cp.Name == tp.StrVal && protocolOr(cp.Protocol) == proto {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	}
	if n, ok := match(p.Spec.Containers, false); ok {
		return n, true
	}
	return match(p.Spec.InitContainers, true)
}

func protocolOr(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// podEndpoint is the endpoint a pod gives a service.
func podEndpoint(svc *corev1.Service, p *corev1.Pod, ip, zone string) discoveryv1.Endpoint {
	ready := podReady(p)
	terminating := p.DeletionTimestamp != nil
	publish := svc.Spec.PublishNotReadyAddresses
	ep := discoveryv1.Endpoint{
		Addresses: []string{ip},
		Conditions: discoveryv1.EndpointConditions{
			Ready:       ptr.To(publish || (ready && !terminating)),
			Serving:     ptr.To(publish || ready),
			Terminating: ptr.To(terminating),
		},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
	}
	if p.Spec.NodeName != "" {
		ep.NodeName = ptr.To(p.Spec.NodeName)
	}
	if zone != "" {
		ep.Zone = ptr.To(zone)
	}
	if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name {
		ep.Hostname = ptr.To(p.Spec.Hostname)
	}
	return ep
}

// podEndpoints computes what a service's selected pods give: the endpoints
// grouped by port set, and the summary its condition is decided from.
// zoneOf names a node's zone.
func podEndpoints(svc *corev1.Service, pods []*corev1.Pod, zoneOf func(node string) string) (endpointSet, endpointSummary) {
	set := endpointSet{}
	var sum endpointSummary
	defined := make([]int, len(svc.Spec.Ports))
	for _, p := range pods {
		if podFinished(p) {
			continue
		}
		sum.selected++
		ports, found := resolvePorts(svc, p)
		for i, ok := range found {
			if ok {
				defined[i]++
			}
		}
		ip := podIPv4(p)
		if ip == "" || (len(svc.Spec.Ports) > 0 && len(ports) == 0) {
			continue
		}
		ep := podEndpoint(svc, p, ip, zoneOf(p.Spec.NodeName))
		set.add(ports, ep)
		if *ep.Conditions.Ready {
			sum.ready++
		}
	}
	for i, sp := range svc.Spec.Ports {
		if sum.selected > 0 && defined[i] == 0 {
			sum.unmatched = append(sum.unmatched, fmt.Sprintf("target port %q of port %s %s",
				sp.TargetPort.StrVal, describeServicePort(sp), definedByNone(sum.selected)))
		}
	}
	return set, sum
}

func describeServicePort(sp corev1.ServicePort) string {
	if sp.Name != "" {
		return strconv.Quote(sp.Name)
	}
	return fmt.Sprintf("%d/%s", sp.Port, protocolOr(sp.Protocol))
}

func definedByNone(selected int) string {
	if selected == 1 {
		return "is not defined by the selected pod"
	}
	return fmt.Sprintf("is defined by none of the %d selected pods", selected)
}
