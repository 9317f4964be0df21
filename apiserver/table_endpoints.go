package apiserver

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/keelson/keelson/store"
)

// shownAtMost is how many addresses or ports kubectl shows in a cell before
// it says how many more there are.
const shownAtMost = 3

// endpointsColumns are kubectl's for Endpoints: NAME, ENDPOINTS, AGE.
var endpointsColumns = []column{nameCol,
	col("Endpoints", func(o store.Object) any { return formatEndpoints(o.(*corev1.Endpoints)) }),
	ageCol,
}

// endpointSliceColumns are kubectl's for EndpointSlices: NAME, ADDRESSTYPE,
// PORTS, ENDPOINTS, AGE.
var endpointSliceColumns = []column{nameCol,
	col("AddressType", func(o store.Object) any { return string(o.(*discoveryv1.EndpointSlice).AddressType) }),
	col("Ports", func(o store.Object) any { return formatSlicePorts(o.(*discoveryv1.EndpointSlice).Ports) }),
	col("Endpoints", func(o store.Object) any { return formatSliceEndpoints(o.(*discoveryv1.EndpointSlice).Endpoints) }),
	ageCol,
}

// shortList writes the first shownAtMost of total items as kubectl does:
// "a,b,c + 2 more...".
func shortList(shown []string, total int) string {
	s := strings.Join(shown, ",")
	if total > len(shown) {
		s += fmt.Sprintf(" + %d more...", total-len(shown))
	}
	return s
}

// formatEndpoints lists the ready addresses as ip:port for every port of
// their subset (the bare ip for a subset without ports, as a headless
// service may have).
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return "<none>"
	}
	var shown []string
	total := 0
	add := func(s string) {
		total++
		if len(shown) < shownAtMost {
			shown = append(shown, s)
		}
	}
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			for _, a := range ss.Addresses {
				add(a.IP)
			}
			continue
		}
		for _, p := range ss.Ports {
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	return shortList(shown, total)
}

// formatSlicePorts lists port numbers (a name when the number is unset, "*"
// when both are), "<unset>" when there is none.
func formatSlicePorts(ports []discoveryv1.EndpointPort) string {
	if len(ports) == 0 {
		return "<unset>"
	}
	var shown []string
	for _, p := range ports[:min(len(ports), shownAtMost)] {
		switch {
		case p.Port != nil:
			shown = append(shown, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			shown = append(shown, *p.Name)
		default:
			shown = append(shown, "*")
		}
	}
	return shortList(shown, len(ports))
}

// formatSliceEndpoints lists the addresses of every endpoint, ready or not,
// "<unset>" when there is none.
func formatSliceEndpoints(eps []discoveryv1.Endpoint) string {
	var shown []string
	total := 0
	for _, e := range eps {
		for _, a := range e.Addresses {
			total++
			if len(shown) < shownAtMost {
				shown = append(shown, a)
			}
		}
	}
	if total == 0 {
		return "<unset>"
	}
	return shortList(shown, total)
}
