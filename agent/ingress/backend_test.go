package ingress

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// TestEndpointsFollowInformers: a service whose endpoints are not ready
// answers 503; once the slice says ready, requests reach it.
func TestEndpointsFollowInformers(t *testing.T) {
	web := newUpstream(t, "web")
	sl := slice("web-1", "web", web.port, false, "127.0.0.1")
	e := newEnv(t, service("web"), sl, ingress("web", 0, rule("web.example.com", prefix("/", "web"))))
	c := e.client(e.proxy())

	if r := c.get("web.example.com", "/"); r.status != http.StatusServiceUnavailable {
		t.Errorf("no ready endpoint: %d %q, want 503", r.status, r.body)
	}
	sl.Endpoints[0].Conditions.Ready = nil // nil means ready
	if _, err := e.cs.DiscoveryV1().EndpointSlices(ns).Update(context.Background(), sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitFor("web.example.com", "/", "web")
}

// TestIngressAddedAndRemoved: an Ingress created after the start is served,
// and 404 follows its deletion.
func TestIngressAddedAndRemoved(t *testing.T) {
	web := newUpstream(t, "web")
	e := newEnv(t, serviceFor(web)...)
	c := e.client(e.proxy())
	if got := c.get("web.example.com", "/").served(); got != "404" {
		t.Fatalf("before the Ingress: served by %s, want 404", got)
	}
	e.create(ingress("web", 0, rule("web.example.com", prefix("/", "web"))))
	c.waitFor("web.example.com", "/", "web")
	if err := e.cs.NetworkingV1().Ingresses(ns).Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitFor("web.example.com", "/", "404")
}

// TestUnknownService: a backend naming a service that does not exist
// answers 503, and the Ingress gets one Warning however many requests and
// rebuilds meet it; the service appearing later is picked up.
func TestUnknownService(t *testing.T) {
	web := newUpstream(t, "web")
	e := newEnv(t, ingress("web", 0, rule("web.example.com", prefix("/", "web"))))
	p := e.proxy()
	c := e.client(p)
	for range 10 {
		if r := c.get("web.example.com", "/"); r.status != http.StatusServiceUnavailable {
			t.Fatalf("unknown service: %d %q, want 503", r.status, r.body)
		}
	}
	// Rebuilds for unrelated changes do not tell the problem again.
	builds := p.builds.Load()
	e.create(ingress("other", 1, rule("other.example.com", prefix("/", "other"))))
	eventually(t, "a rebuild", func() bool { return p.builds.Load() > builds })
	evs := e.eventsOf(ns+"/web", ReasonBackendNotFound)
	if len(evs) != 1 || evs[0].typ != "Warning" || !strings.Contains(evs[0].message, `service "web" not found`) {
		t.Errorf("events on the Ingress: %+v, want one Warning %s", evs, ReasonBackendNotFound)
	}

	e.create(serviceFor(web)...)
	c.waitFor("web.example.com", "/", "web")
}

// TestUnservableBackends: a resource backend and an unknown port answer
// 503, each with a Warning.
func TestUnservableBackends(t *testing.T) {
	web := newUpstream(t, "web")
	res := ingress("res", 0, rule("res.example.com", networkingv1.HTTPIngressPath{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
		Backend: networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{APIGroup: ptr.To("storage.example.com"), Kind: "Bucket", Name: "assets"}}}))
	port := ingress("port", 0, rule("port.example.com", networkingv1.HTTPIngressPath{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
		Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Name: "grpc"}}}}))
	e := newEnv(t, objects(serviceFor(web), []runtime.Object{res, port})...)
	c := e.client(e.proxy())
	for _, tc := range []struct{ host, ing, reason string }{
		{"res.example.com", "res", ReasonBackendNotSupported},
		{"port.example.com", "port", ReasonBackendNotFound},
	} {
		if r := c.get(tc.host, "/"); r.status != http.StatusServiceUnavailable {
			t.Errorf("%s: %d %q, want 503", tc.host, r.status, r.body)
		}
		if evs := e.eventsOf(ns+"/"+tc.ing, tc.reason); len(evs) != 1 {
			t.Errorf("%s: events %+v, want one %s", tc.ing, evs, tc.reason)
		}
	}
}

// TestRetriesAnotherEndpoint: of a service's two endpoints one refuses
// connections; every request still succeeds, whatever its method and body,
// over HTTP/1.1 and h2c to the endpoints.
func TestRetriesAnotherEndpoint(t *testing.T) {
	for _, appProtocol := range []string{"", appProtocolH2C} {
		t.Run("appProtocol="+appProtocol, func(t *testing.T) {
			alive := newUpstream(t, "web")
			dead, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			deadPort := int32(dead.Addr().(*net.TCPAddr).Port)
			dead.Close()
			svc := service("web")
			if appProtocol != "" {
				svc.Spec.Ports[0].AppProtocol = ptr.To(appProtocol)
			}
			e := newEnv(t, svc,
				slice("web-alive", "web", alive.port, true, "127.0.0.1"),
				slice("web-dead", "web", deadPort, true, "127.0.0.1"),
				ingress("web", 0, rule("web.example.com", prefix("/", "web"))))
			c := e.client(e.proxy())
			wantProto := map[string]string{"": "HTTP/1.1", appProtocolH2C: "HTTP/2.0"}[appProtocol]
			// Four of each in a row: each method starts at either endpoint.
			for i := range 12 {
				method, body := http.MethodGet, ""
				switch i / 4 {
				case 1:
					method, body = http.MethodPost, "payload"
				case 2:
					method, body = http.MethodPut, strings.Repeat("x", 100_000)
				}
				r := c.do(method, "web.example.com", "/", body)
				if r.status != http.StatusOK || r.header.Get("X-Seen-Body") != body || r.header.Get("X-Seen-Proto") != wantProto {
					t.Fatalf("request %d (%s): %d %q, %d bytes of body seen over %s; want 200 with the body over %s",
						i, method, r.status, r.body, len(r.header.Get("X-Seen-Body")), r.header.Get("X-Seen-Proto"), wantProto)
				}
			}
		})
	}
}

// TestRoundRobin: requests are spread over a service's endpoints.
func TestRoundRobin(t *testing.T) {
	a, b := newUpstream(t, "a"), newUpstream(t, "b")
	e := newEnv(t, service("web"),
		slice("web-a", "web", a.port, true, "127.0.0.1"),
		slice("web-b", "web", b.port, true, "127.0.0.1"),
		ingress("web", 0, rule("web.example.com", prefix("/", "web"))))
	c := e.client(e.proxy())
	seen := map[string]int{}
	for range 10 {
		seen[c.get("web.example.com", "/").served()]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Errorf("10 requests went %v, want 5 to each endpoint", seen)
	}
}

// TestForwardedHeaders: the backend sees the client's Host, and who asked
// and how in X-Forwarded-For/-Proto/-Host; what the client claimed in those
// headers is not trusted.
func TestForwardedHeaders(t *testing.T) {
	web := newUpstream(t, "web")
	e := newEnv(t, objects(serviceFor(web), []runtime.Object{ingress("web", 0, rule("web.example.com", prefix("/", "web")))})...)
	c := e.client(e.proxy())
	r := c.do(http.MethodGet, "web.example.com:8080", "/", "", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example.com")
	for h, want := range map[string]string{
		"X-Seen-Host":            "web.example.com:8080",
		"X-Seen-Forwarded-For":   "127.0.0.1",
		"X-Seen-Forwarded-Proto": "http",
		"X-Seen-Forwarded-Host":  "web.example.com:8080",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", strings.TrimPrefix(h, "X-Seen-"), got, want)
		}
	}
}

// TestEndpoints: which endpoints of which slices a service port has.
func TestEndpoints(t *testing.T) {
	s1 := slice("a", "web", 8080, true, "10.0.0.2", "10.0.0.1")
	s1.Endpoints = append(s1.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.0.0.3"}}) // nil ready: ready
	s2 := slice("b", "web", 8080, false, "10.0.0.9")
	s3 := slice("c", "web", 9090, true, "fd00::1")
	s3.AddressType = discoveryv1.AddressTypeIPv6
	s4 := slice("d", "web", 7070, true, "10.0.0.4")
	s4.Ports[0].Name = ptr.To("metrics")
	s5 := slice("e", "web", 8080, true, "10.0.0.1") // the same endpoint in two slices
	got := strings.Join(endpoints([]*discoveryv1.EndpointSlice{s1, s2, s3, s4, s5}, "http"), " ")
	want := "10.0.0.1:8080 10.0.0.2:8080 10.0.0.3:8080 [fd00::1]:9090"
	if got != want {
		t.Errorf("endpoints: %s, want %s", got, want)
	}
}
