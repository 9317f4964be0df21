package ingress

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// appProtocolH2C is the appProtocol of a service port that speaks HTTP/2
// without TLS (prior knowledge).
const appProtocolH2C = "kubernetes.io/h2c"

// servicePort finds the port an Ingress backend names, by number or name.
func servicePort(svc *corev1.Service, port networkingv1.ServiceBackendPort) (*corev1.ServicePort, error) {
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		if (port.Name != "" && sp.Name == port.Name) || (port.Name == "" && sp.Port == port.Number) {
			return sp, nil
		}
	}
	if port.Name != "" {
		return nil, fmt.Errorf("service %s/%s has no TCP port named %q", svc.Namespace, svc.Name, port.Name)
	}
	return nil, fmt.Errorf("service %s/%s has no TCP port %d", svc.Namespace, svc.Name, port.Number)
}

// endpoints are the "address:port" of the ready endpoints of a service
// port, from its EndpointSlices: the port of each slice named as the
// service port is, and of each endpoint its first address, as Kubernetes
// tells consumers to do. A nil ready condition means ready.
func endpoints(sl []*discoveryv1.EndpointSlice, portName string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range sl {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port := slicePort(s, portName)
		if port == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 || (e.Conditions.Ready != nil && !*e.Conditions.Ready) {
				continue
			}
			ip := net.ParseIP(e.Addresses[0])
			if ip == nil {
				continue
			}
			hp := net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
			if !seen[hp] {
				seen[hp] = true
				out = append(out, hp)
			}
		}
	}
	slices.Sort(out)
	return out
}

// slicePort is the TCP port a slice gives the service port of that name, 0
// when it has none.
func slicePort(s *discoveryv1.EndpointSlice, name string) int32 {
	for _, p := range s.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		if pn != name || p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
			continue
		}
		if *p.Port > 0 && *p.Port <= 65535 {
			return *p.Port
		}
	}
	return 0
}
