package ingress

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"))
}

const ns = "default"

// env is a fake API whose informers feed the proxy under test, and the
// events the proxy records.
type env struct {
	t       testing.TB
	cs      *fake.Clientset
	factory informers.SharedInformerFactory

	mu     sync.Mutex
	events []event
}

type event struct {
	object, typ, reason, message string
}

func newEnv(t testing.TB, objs ...runtime.Object) *env {
	e := &env{t: t, cs: fake.NewClientset(objs...)}
	e.factory = informers.NewSharedInformerFactory(e.cs, 0)
	e.factory.Networking().V1().Ingresses().Informer()
	e.factory.Networking().V1().IngressClasses().Informer()
	e.factory.Core().V1().Services().Informer()
	e.factory.Discovery().V1().EndpointSlices().Informer()
	e.factory.Core().V1().Secrets().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	e.factory.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		e.factory.Shutdown()
	})
	e.factory.WaitForCacheSync(ctx.Done())
	return e
}

func (e *env) config() Config {
	return Config{
		Ingresses:      e.factory.Networking().V1().Ingresses().Informer(),
		IngressClasses: e.factory.Networking().V1().IngressClasses().Informer(),
		Services:       e.factory.Core().V1().Services().Informer(),
		EndpointSlices: e.factory.Discovery().V1().EndpointSlices().Informer(),
		Secrets:        e.factory.Core().V1().Secrets().Informer(),
		HTTPAddr:       "127.0.0.1:0",
		HTTPSAddr:      "127.0.0.1:0",
		Event:          e.record,
		Logger:         slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (e *env) record(obj runtime.Object, typ, reason, message string) {
	m, _ := obj.(metav1.Object)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, event{object: m.GetNamespace() + "/" + m.GetName(), typ: typ, reason: reason, message: message})
}

// eventsOf returns the events recorded on an object with the reason.
func (e *env) eventsOf(object, reason string) []event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []event
	for _, ev := range e.events {
		if ev.object == object && ev.reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

// proxy starts a proxy and waits until it serves; t.Cleanup stops it and
// checks that Run returned nil.
func (e *env) proxy(mod ...func(*Config)) *Proxy {
	e.t.Helper()
	p, stop := e.start(mod...)
	e.t.Cleanup(stop)
	return p
}

// start starts a proxy, waits until it serves, and returns a func that
// stops it and waits for Run to return.
func (e *env) start(mod ...func(*Config)) (*Proxy, func()) {
	e.t.Helper()
	cfg := e.config()
	for _, m := range mod {
		m(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-p.Ready():
	case err := <-done:
		cancel()
		e.t.Fatalf("Run: %v", err)
	case <-time.After(time.Minute):
		e.t.Fatal("proxy not ready after a minute")
	}
	var once sync.Once
	return p, func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
		})
	}
}

func (e *env) create(objs ...runtime.Object) {
	e.t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *networkingv1.Ingress:
			_, err = e.cs.NetworkingV1().Ingresses(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *networkingv1.IngressClass:
			_, err = e.cs.NetworkingV1().IngressClasses().Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = e.cs.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *discoveryv1.EndpointSlice:
			_, err = e.cs.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = e.cs.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("create: unexpected %T", o)
		}
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

// upstream is an HTTP server on 127.0.0.1 that answers with its name, in the
// body and the X-Backend header, and echoes what it was asked in headers.
type upstream struct {
	name string
	srv  *httptest.Server
	port int32
}

func newUpstream(t testing.TB, name string) *upstream {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Backend", name)
		h.Set("X-Seen-Host", r.Host)
		h.Set("X-Seen-Path", r.URL.Path)
		h.Set("X-Seen-Proto", r.Proto)
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
			h.Set("X-Seen-"+strings.TrimPrefix(k, "X-"), strings.Join(r.Header.Values(k), ","))
		}
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			h.Set("X-Seen-Body", string(b))
		}
		_, _ = io.WriteString(w, name)
	}))
	// HTTP/1.1, and h2c for service ports that ask for it.
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n, _ := strconv.Atoi(port)
	return &upstream{name: name, srv: srv, port: int32(n)}
}

// service makes a Service with port 80 named "http".
func service(name string, mod ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mod {
		m(s)
	}
	return s
}

// slice makes an EndpointSlice of a service whose port "http" is port, with
// one endpoint per address; ready says whether they are.
func slice(name, svc string, port int32, ready bool, addrs ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{servicenet.LabelServiceName: svc, servicenet.LabelManagedBy: servicenet.EndpointSliceManagedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
		})
	}
	return s
}

// serviceFor makes the Service and EndpointSlice of an upstream.
func serviceFor(b *upstream) []runtime.Object {
	return []runtime.Object{service(b.name), slice(b.name+"-1", b.name, b.port, true, "127.0.0.1")}
}

// ingress makes an Ingress created at minute age of 2026-01-01.
func ingress(name string, minute int, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC))},
		Spec: networkingv1.IngressSpec{Rules: rules},
	}
}

// rule makes a rule of host ("" for any) with paths.
func rule(host string, ps ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
		HTTP: &networkingv1.HTTPIngressRuleValue{Paths: ps}}}
}

func path(typ networkingv1.PathType, p, svc string) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: ptr.To(typ), Backend: svcBackend(svc)}
}

func prefix(p, svc string) networkingv1.HTTPIngressPath {
	return path(networkingv1.PathTypePrefix, p, svc)
}

func svcBackend(svc string) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}
}

// client sends requests to the proxy's plain HTTP address.
type client struct {
	t    testing.TB
	addr string
	c    *http.Client
}

func (e *env) client(p *Proxy) *client {
	httpAddr, _ := p.Addrs()
	tr := &http.Transport{DisableCompression: true}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &client{t: e.t, addr: httpAddr.String(), c: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// reply is what the proxy answered.
type reply struct {
	status int
	body   string
	header http.Header
	proto  int
	tls    *tls.ConnectionState
}

func (c *client) do(method, host, path, body string, hdr ...string) reply {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+c.addr+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return send(c.t, c.c, req)
}

func send(t testing.TB, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", req.Method, req.URL, req.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, body: string(b), header: resp.Header, proto: resp.ProtoMajor, tls: resp.TLS}
}

func (c *client) get(host, path string) reply {
	c.t.Helper()
	return c.do(http.MethodGet, host, path, "")
}

// served names the backend that answered, or the status when none did.
func (r reply) served() string {
	if r.status == http.StatusOK {
		return r.header.Get("X-Backend")
	}
	return strconv.Itoa(r.status)
}

// waitFor polls host and path until the answer is want (a backend's name,
// or a status), or fails after a minute.
func (c *client) waitFor(host, path, want string) {
	c.t.Helper()
	eventually(c.t, fmt.Sprintf("%s%s → %s", host, path, want), func() bool { return c.get(host, path).served() == want })
}

// eventually polls cond until it holds or a minute passes (the bound is for
// a broken build, not a measure).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
