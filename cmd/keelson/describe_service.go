package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"

	"github.com/keelson/keelson/internal/servicenet"
)

// endpointsShown is how many endpoints a port's Endpoints line shows before
// saying how many more there are, as kubectl does.
const endpointsShown = 3

// describeService writes what kubectl describe service shows of a service
// besides its metadata: selector, type, addresses, and for each port its
// target port, node port and ready endpoints, read from its EndpointSlices.
func describeService(ctx context.Context, out io.Writer, client rest.Interface, raw []byte) error {
	var svc corev1.Service
	if err := json.Unmarshal(raw, &svc); err != nil {
		return fmt.Errorf("decode service: %w", err)
	}
	eps, listErr := serviceSlices(ctx, client, &svc)
	w := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "Selector:\t%s\n", orNone(labels.Set(svc.Spec.Selector).String()))
	fmt.Fprintf(w, "Type:\t%s\n", svc.Spec.Type)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		fmt.Fprintf(w, "External Name:\t%s\n", svc.Spec.ExternalName)
	}
	fmt.Fprintf(w, "IP:\t%s\n", orNone(svc.Spec.ClusterIP))
	for _, p := range svc.Spec.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		fmt.Fprintf(w, "Port:\t%s  %d/%s\n", name, p.Port, proto)
		fmt.Fprintf(w, "TargetPort:\t%s/%s\n", targetPortOf(p), proto)
		if p.NodePort != 0 {
			fmt.Fprintf(w, "NodePort:\t%s  %d/%s\n", name, p.NodePort, proto)
		}
		if listErr != nil {
			fmt.Fprintf(w, "Endpoints:\t<cannot list EndpointSlices: %v>\n", listErr)
		} else {
			fmt.Fprintf(w, "Endpoints:\t%s\n", readyEndpoints(eps, p.Name))
		}
	}
	if len(svc.Spec.Ports) == 0 && listErr == nil {
		fmt.Fprintf(w, "Endpoints:\t%s\n", readyEndpoints(eps, ""))
	}
	fmt.Fprintf(w, "Session Affinity:\t%s\n", orNone(string(svc.Spec.SessionAffinity)))
	return w.Flush()
}

func serviceSlices(ctx context.Context, client rest.Interface, svc *corev1.Service) ([]discoveryv1.EndpointSlice, error) {
	b, err := client.Get().AbsPath("/apis/discovery.k8s.io/v1/namespaces/"+svc.Namespace+"/endpointslices").
		Param("labelSelector", servicenet.LabelServiceName+"="+svc.Name).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var list discoveryv1.EndpointSliceList
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("decode EndpointSlices: %w", err)
	}
	return list.Items, nil
}

func targetPortOf(p corev1.ServicePort) string {
	switch {
	case p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "":
		return p.TargetPort.StrVal
	case p.TargetPort.IntVal != 0:
		return strconv.Itoa(int(p.TargetPort.IntVal))
	}
	return strconv.Itoa(int(p.Port))
}

// readyEndpoints lists "ip:port" of the ready endpoints for the service port
// named portName (a bare ip in slices without ports): at most three, then
// "+ N more...", or <none>.
func readyEndpoints(slices []discoveryv1.EndpointSlice, portName string) string {
	var shown []string
	total := 0
	add := func(s string) {
		total++
		if len(shown) < endpointsShown {
			shown = append(shown, s)
		}
	}
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, addr := range e.Addresses {
				if len(s.Ports) == 0 {
					add(addr)
				}
				for _, p := range s.Ports {
					if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
						add(net.JoinHostPort(addr, strconv.Itoa(int(*p.Port))))
					}
				}
			}
		}
	}
	if total == 0 {
		return "<none>"
	}
	s := strings.Join(shown, ",")
	if total > len(shown) {
		s += fmt.Sprintf(" + %d more...", total-len(shown))
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
