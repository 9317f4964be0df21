package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/keelson/keelson/internal/servicenet"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchServerEnv) != "" {
		os.Exit(benchServerMain())
	}
	goleak.VerifyTestMain(m)
}

// fixture is a listening server fed by informers over a fake clientset.
type fixture struct {
	cs   *fake.Clientset
	srv  *Server
	addr string
	reg  *prometheus.Registry
}

// quietLogger drops the server's logs unless the test runs verbose.
func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer starts informers over objs and a server on a free loopback
// port; forwarding is off unless cfg names upstreams. Everything stops at
// the end of the test.
func startServer(t testing.TB, cfg Config, objs ...runtime.Object) *fixture {
	t.Helper()
	cs := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(cs, 0)
	cfg.Services = factory.Core().V1().Services().Informer()
	cfg.EndpointSlices = factory.Discovery().V1().EndpointSlices().Informer()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Upstreams == nil {
		cfg.Upstreams = []string{}
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer, cfg.Logger = reg, quietLogger()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		if !srv.ready() {
			return errors.New("the index never synced")
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		factory.Shutdown()
	})
	return &fixture{cs: cs, srv: srv, addr: srv.Addr().String(), reg: reg}
}

// ask sends one question over network ("udp" or "tcp") and fails the test
// when no answer comes.
func (f *fixture) ask(t testing.TB, network, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	r, err := f.tryAsk(network, name, qtype, edns)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryAsk sends one question and checks that the answer is one to it.
func (f *fixture) tryAsk(network, name string, qtype uint16, edns uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	if edns > 0 {
		q.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(q, f.addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", network, name, dns.TypeToString[qtype], err)
	}
	if r.Id != q.Id || !r.Response {
		return nil, fmt.Errorf("%s %s: answer id %d response %v, want id %d", network, name, r.Id, r.Response, q.Id)
	}
	return r, nil
}

// eventually retries check until it returns nil, for what the informers
// deliver in the background; it fails with check's last error after a
// bounded number of tries.
func eventually(t testing.TB, check func() error) {
	t.Helper()
	var err error
	for range 1000 {
		if err = check(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal(err)
}

// rrs writes records one a line, tabs as spaces, sorted.
func rrs(records []dns.RR) []string {
	out := make([]string, 0, len(records))
	for _, rr := range records {
		if soa, ok := rr.(*dns.SOA); ok {
			// The serial changes with every change of the index.
			c := *soa
			c.Serial = 0
			rr = &c
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

// counter reads a counter of the fixture's registry by its labels.
func (f *fixture) counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// Objects of the tests.

type svcOpt func(*corev1.Service)

func svc(ns, name, clusterIP string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, Type: corev1.ServiceTypeClusterIP},
	}
	if clusterIP != "" && clusterIP != corev1.ClusterIPNone {
		s.Spec.ClusterIPs = []string{clusterIP}
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withPort(name string, proto corev1.Protocol, p int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: name, Protocol: proto, Port: p})
	}
}

func externalName(target string) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ServiceTypeExternalName, target, "", nil
	}
}

func publishNotReady(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }

// ep is one endpoint: its address, hostname ("" for none) and readiness.
type ep struct {
	addr, host string
	ready      bool
}

func epSlice(ns, name, service string, ports []discoveryv1.EndpointPort, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{servicenet.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
	}
	for _, e := range eps {
		ready := e.ready
		d := discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
		if e.host != "" {
			d.Hostname = &e.host
		}
		es.Endpoints = append(es.Endpoints, d)
	}
	return es
}

func slicePort(name string, proto corev1.Protocol, p int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &p}
}

// rcodeOf names an answer's rcode for messages.
func rcodeOf(m *dns.Msg) string { return rcodeName(m.Rcode) }
