package main

import (
	"bytes"
	"regexp"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

func TestDescribeServiceShowsEndpoints(t *testing.T) {
	st, url := startPlanAPI(t)
	ready := func(ip string, ok bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ok)}}
	}
	objs := []store.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "10.43.0.20", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("web"), NodePort: 30080},
				{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9090},
			}}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "web-x7k2p", Labels: map[string]string{servicenet.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))},
				{Name: ptr.To("metrics"), Port: ptr.To(int32(9090))}},
			Endpoints: []discoveryv1.Endpoint{ready("10.42.0.5", true), ready("10.42.0.6", true), ready("10.42.0.7", false), ready("10.42.0.8", true)},
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "web-b2c3d", Labels: map[string]string{servicenet.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8081))}},
			Endpoints:   []discoveryv1.Endpoint{ready("10.42.1.5", true)},
		},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "idle"}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.43.0.21", Selector: map[string]string{"app": "idle"},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}}},
	}
	for _, o := range objs {
		if err := st.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	// The plan API is plain HTTP, over which a kubeconfig's token is not
	// sent: the client is configured directly.
	cfg := &rest.Config{Host: url, BearerToken: "reader-token"}
	cases := []struct {
		name  string
		lines []string // regular expressions, each matching a line in order
	}{
		{"web", []string{`^Selector: +app=web$`, `^Type: +NodePort$`, `^IP: +10\.43\.0\.20$`,
			`^Port: +http  80/TCP$`, `^TargetPort: +web/TCP$`, `^NodePort: +http  30080/TCP$`,
			`^Endpoints: +[0-9.:,]+ \+ 1 more\.\.\.$`,
			`^Port: +metrics  9090/TCP$`, `^TargetPort: +9090/TCP$`, `^Endpoints: +10\.42\.0\.5:9090,10\.42\.0\.6:9090,10\.42\.0\.8:9090$`}},
		{"idle", []string{`^Selector: +app=idle$`, `^Port: +http  80/TCP$`, `^Endpoints: +<none>$`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := describeObject(t.Context(), &out, cfg, "shop", "service", tc.name); err != nil {
				t.Fatal(err)
			}
			rest := out.String()
			for _, l := range tc.lines {
				loc := regexp.MustCompile("(?m)" + l).FindStringIndex(rest)
				if loc == nil {
					t.Fatalf("no line matching %s after what came before, in:\n%s", l, out.String())
				}
				rest = rest[loc[1]:]
			}
		})
	}
}

func TestReadyEndpoints(t *testing.T) {
	slice := func(ports []discoveryv1.EndpointPort, ips ...string) discoveryv1.EndpointSlice {
		s := discoveryv1.EndpointSlice{Ports: ports}
		for _, ip := range ips {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}})
		}
		return s
	}
	http := []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))}}
	unnamed := []discoveryv1.EndpointPort{{Name: ptr.To(""), Port: ptr.To(int32(80))}}
	cases := []struct {
		name   string
		slices []discoveryv1.EndpointSlice
		port   string
		want   string
	}{
		{"none", nil, "http", "<none>"},
		{"empty slice", []discoveryv1.EndpointSlice{slice(nil)}, "http", "<none>"},
		{"two", []discoveryv1.EndpointSlice{slice(http, "10.42.0.5", "10.42.0.6")}, "http", "10.42.0.5:8080,10.42.0.6:8080"},
		{"other port", []discoveryv1.EndpointSlice{slice(http, "10.42.0.5")}, "metrics", "<none>"},
		{"unnamed port", []discoveryv1.EndpointSlice{slice(unnamed, "10.42.0.5")}, "", "10.42.0.5:80"},
		{"headless without ports", []discoveryv1.EndpointSlice{slice(nil, "10.42.0.5")}, "", "10.42.0.5"},
		{"more than three", []discoveryv1.EndpointSlice{slice(http, "10.42.0.1", "10.42.0.2"), slice(http, "10.42.0.3", "10.42.0.4", "10.42.0.5")},
			"http", "10.42.0.1:8080,10.42.0.2:8080,10.42.0.3:8080 + 2 more..."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := readyEndpoints(tc.slices, tc.port); got != tc.want {
				t.Errorf("readyEndpoints = %q, want %q", got, tc.want)
			}
		})
	}
}
