package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/netnstest"
	"github.com/keelson/keelson/internal/servicenet"
)

func TestMain(m *testing.M) { os.Exit(netnstest.CheckMain(m)) }

const (
	thisNode  = "node-a"
	otherNode = "node-b"
	nodeIP    = "192.168.77.1"
	outsideIP = "192.168.77.2"
	bridgeIP  = "10.42.0.1"
)

// env is a node: a namespace with the pod bridge, pods plugged into it, a
// link to an "outside" namespace that is also its default route, and a fake
// API whose informers feed the proxiers under test.
type env struct {
	t       *testing.T
	node    *netnstest.NS
	outside *netnstest.NS
	cs      *fake.Clientset
	factory informers.SharedInformerFactory
}

func newEnv(t *testing.T) *env {
	e := &env{t: t}
	e.node = netnstest.New(t, "node")
	e.node.Sysctl(t, "ipv4/ip_forward", "1")
	e.node.Bridge(t, "keelson0", bridgeIP+"/24")
	e.outside = netnstest.New(t, "outside")
	netnstest.Link(t, e.node, "eth0", nodeIP+"/24", e.outside, "eth0", outsideIP+"/24")
	e.node.DefaultRoute(t, outsideIP)

	e.cs = fake.NewClientset(
		node(thisNode, "10.42.0.0/24", nodeIP),
		node(otherNode, "10.42.1.0/24", "192.168.77.3"))
	e.factory = informers.NewSharedInformerFactory(e.cs, 0)
	e.factory.Core().V1().Services().Informer()
	e.factory.Discovery().V1().EndpointSlices().Informer()
	e.factory.Core().V1().Nodes().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	e.factory.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		e.factory.Shutdown()
	})
	return e
}

func node(name, podCIDR, ip string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}},
	}
}

// pod plugs a pod namespace with address 10.42.0.<n> into the bridge.
func (e *env) pod(name string, n int) *netnstest.NS {
	return e.node.Pod(e.t, name, "keelson0", fmt.Sprintf("10.42.0.%d/24", n), bridgeIP)
}

// proxier starts a proxier on the node and waits for its first sync;
// t.Cleanup stops it.
func (e *env) proxier(mod func(*Config)) *Proxier {
	p, stop := e.start(mod)
	e.t.Cleanup(stop)
	e.waitApplied(p, 0)
	return p
}

// start starts a proxier on the node and returns a func that stops it and
// waits for Run to return.
func (e *env) start(mod func(*Config)) (*Proxier, func()) {
	cfg := Config{
		Services:       e.factory.Core().V1().Services().Informer(),
		EndpointSlices: e.factory.Discovery().V1().EndpointSlices().Informer(),
		Nodes:          e.factory.Core().V1().Nodes().Informer(),
		NodeName:       thisNode,
		Masquerade:     true,
		NetNS:          e.node.Path,
		MinSyncPeriod:  10 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return p, e.run(p)
}

// run starts p.Run and returns a func that stops it and waits for it.
func (e *env) run(p *Proxier) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var once sync.Once
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}

// waitApplied waits until p has completed a sync after the n-th.
func (e *env) waitApplied(p *Proxier, n uint64) {
	e.t.Helper()
	eventually(e.t, fmt.Sprintf("sync %d", n+1), func() bool { return p.Applied() > n })
}

// eventually polls cond until it holds or a minute passes, then fails the
// test (the bound is for a broken build, not a measure).
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

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// service makes a ClusterIP service with one TCP port 80 → 8080.
func service(name, ip string, mod ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mod {
		m(s)
	}
	return s
}

// ep is an endpoint of a test slice.
type ep struct {
	ip          string
	node        string
	ready       bool
	terminating bool
}

func ready(ip string) ep { return ep{ip: ip, node: thisNode, ready: true} }

// slice makes the EndpointSlice of a service whose port "http" is port on
// the given protocol.
func slice(svc string, proto corev1.Protocol, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-abc",
			Labels: map[string]string{servicenet.LabelServiceName: svc, servicenet.LabelManagedBy: servicenet.EndpointSliceManagedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(proto), Port: ptr.To(port)}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{e.ip},
			NodeName:  ptr.To(e.node),
			Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(e.ready), Serving: ptr.To(e.ready || e.terminating), Terminating: ptr.To(e.terminating),
			},
		})
	}
	return s
}

func (e *env) create(objs ...any) {
	e.t.Helper()
	ctx := e.t.Context()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Service:
			_, err = e.cs.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *discoveryv1.EndpointSlice:
			_, err = e.cs.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Node:
			_, err = e.cs.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("create: unexpected %T", o)
		}
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) updateSlice(s *discoveryv1.EndpointSlice) {
	e.t.Helper()
	if _, err := e.cs.DiscoveryV1().EndpointSlices(s.Namespace).Update(e.t.Context(), s, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// table is the node's table as the kernel has it: each chain's rule
// handles, and the keys of each verdict map.
type table struct {
	chains map[string][]uint64
	elems  map[string]map[elemKey]verdict
}

// A running proxier may change the table between two of the reads, which
// then fail (an object is gone): the read is tried again.
func (e *env) table(name string) table {
	e.t.Helper()
	var err error
	for range 50 {
		var tb table
		if tb, err = e.readTable(name); err == nil {
			return tb
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("read table: %v", err)
	return table{}
}

func (e *env) readTable(name string) (table, error) {
	out := table{chains: map[string][]uint64{}, elems: map[string]map[elemKey]verdict{}}
	c, err := nftables.New(nftables.WithNetNSFd(int(e.node.Handle())))
	if err != nil {
		return out, err
	}
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
	o, err := observe(c, t)
	if err != nil || o == nil {
		return out, err
	}
	out.elems = o.state.elems
	for ch := range o.state.chains {
		rules, err := c.GetRules(t, &nftables.Chain{Name: ch, Table: t})
		if err != nil {
			return out, err
		}
		out.chains[ch] = []uint64{}
		for _, r := range rules {
			out.chains[ch] = append(out.chains[ch], r.Handle)
		}
	}
	return out, nil
}

// chainsWith returns the names of the chains that contain s.
func (tb table) chainsWith(s string) []string {
	var names []string
	for n := range tb.chains {
		if strings.Contains(n, s) {
			names = append(names, n)
		}
	}
	return names
}
