package route

import (
	"context"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/keelson/keelson/internal/netnstest"
)

func TestMain(m *testing.M) { os.Exit(netnstest.CheckMain(m)) }

// cluster is two nodes on one link (192.168.60.0/24), each with a pod
// bridge and a pod, and a fake API with their Nodes.
type cluster struct {
	t          *testing.T
	a, b       *netnstest.NS
	podA, podB *netnstest.NS
	cs         *fake.Clientset
	factory    informers.SharedInformerFactory
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t}
	c.a, c.b = netnstest.New(t, "node-a"), netnstest.New(t, "node-b")
	netnstest.Link(t, c.a, "eth0", "192.168.60.1/24", c.b, "eth0", "192.168.60.2/24")
	for i, n := range []*netnstest.NS{c.a, c.b} {
		n.Sysctl(t, "ipv4/ip_forward", "1")
		n.Bridge(t, "keelson0", []string{"10.42.1.1/24", "10.42.2.1/24"}[i])
	}
	c.podA = c.a.Pod(t, "pod-a", "keelson0", "10.42.1.2/24", "10.42.1.1")
	c.podB = c.b.Pod(t, "pod-b", "keelson0", "10.42.2.2/24", "10.42.2.1")
	c.cs = fake.NewClientset(node("node-a", "10.42.1.0/24", "192.168.60.1"), node("node-b", "10.42.2.0/24", "192.168.60.2"))
	c.factory = informers.NewSharedInformerFactory(c.cs, 0)
	c.factory.Core().V1().Nodes().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	c.factory.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		c.factory.Shutdown()
	})
	return c
}

func node(name, podCIDR, ip string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}},
	}
}

// router starts a router on ns as nodeName; the returned func stops it and
// waits for Run to return (t.Cleanup does too).
func (c *cluster) router(ns *netnstest.NS, nodeName string, onHealth func(error)) (*Router, func()) {
	return c.start(Config{Nodes: c.factory.Core().V1().Nodes().Informer(), NodeName: nodeName, NetNS: ns.Path, OnHealth: onHealth})
}

// start runs a router of cfg, with a short MinSyncPeriod and the test's
// log, until the returned func or the test's end stops it; it returns
// after the first sync.
func (c *cluster) start(cfg Config) (*Router, func()) {
	cfg.MinSyncPeriod = 5 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{c.t}, nil))
	r, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx); err != nil {
			c.t.Errorf("Run: %v", err)
		}
	})
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	c.t.Cleanup(stop)
	eventually(c.t, "a first sync", func() bool { return r.Applied() > 0 })
	return r, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

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

// routes lists the namespace's IPv4 routes of the main table as "dst via gw
// proto N", keelson's and others'.
func routes(t *testing.T, ns *netnstest.NS) []string {
	t.Helper()
	rts, err := ns.NL.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rt := range rts {
		if rt.Gw == nil || rt.Dst == nil {
			continue
		}
		out = append(out, rt.Dst.String()+" via "+rt.Gw.String()+" proto "+rt.Protocol.String())
	}
	slices.Sort(out)
	return out
}

func hasRoute(t *testing.T, ns *netnstest.NS, r string) bool {
	return slices.Contains(routes(t, ns), r)
}

func TestPodsReachPodsOfOtherNodes(t *testing.T) {
	c := newCluster(t)
	c.podB.ServeTCP(t, ":8080", "pod-b")
	// A route of someone else's, and one keelson left for a node that is
	// gone.
	c.a.Route(t, "10.99.0.0/16", "192.168.60.2")
	_, stale, _ := net.ParseCIDR("10.42.9.0/24")
	if err := c.a.NL.RouteAdd(&netlink.Route{Dst: stale, Gw: net.ParseIP("192.168.60.2"), Protocol: RouteProtocol}); err != nil {
		t.Fatal(err)
	}

	ra, _ := c.router(c.a, "node-a", nil)
	c.router(c.b, "node-b", nil)
	want := []string{"10.42.2.0/24 via 192.168.60.2 proto 75", "10.99.0.0/16 via 192.168.60.2 proto boot"}
	if got := routes(t, c.a); !slices.Equal(got, want) {
		t.Errorf("node-a's routes: %q, want %q", got, want)
	}
	if got := routes(t, c.b); !slices.Equal(got, []string{"10.42.1.0/24 via 192.168.60.1 proto 75"}) {
		t.Errorf("node-b's routes: %q", got)
	}
	r, err := c.podA.DialTCP("10.42.2.2:8080", 5*time.Second)
	if err != nil {
		t.Fatalf("pod-a to pod-b across nodes: %v", err)
	}
	if r.Server != "pod-b" || r.ClientIP() != "10.42.1.2" {
		t.Errorf("pod-b answered %q and saw %s, want its own name and pod-a's address (no NAT)", r.Server, r.ClientIP())
	}

	// node-b leaves: its route goes, the foreign one stays.
	n := ra.Applied()
	if err := c.cs.CoreV1().Nodes().Delete(t.Context(), "node-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node-b's route to go", func() bool {
		return ra.Applied() > n && !hasRoute(t, c.a, "10.42.2.0/24 via 192.168.60.2 proto 75")
	})
	if !hasRoute(t, c.a, "10.99.0.0/16 via 192.168.60.2 proto boot") {
		t.Errorf("the foreign route went too: %q", routes(t, c.a))
	}
}

// healthLog records what OnHealth was told.
type healthLog struct {
	mu   sync.Mutex
	errs []error
}

func (h *healthLog) report(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs = append(h.errs, err)
}

func (h *healthLog) last() (error, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) == 0 {
		return nil, 0
	}
	return h.errs[len(h.errs)-1], len(h.errs)
}

func TestNextHopOffLinkIsReported(t *testing.T) {
	c := newCluster(t)
	var h healthLog
	r, _ := c.router(c.a, "node-a", h.report)
	if err, n := h.last(); err != nil || n != 1 {
		t.Fatalf("health after the first sync: %v (%d reports), want one nil", err, n)
	}

	// node-c's address is not on node-a's link: no route, an error naming
	// it, and node-b still routed.
	c.a.Route(t, "10.200.0.0/16", "192.168.60.2")
	if _, err := c.cs.CoreV1().Nodes().Create(t.Context(), node("node-c", "10.42.3.0/24", "10.200.0.5"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an error about node-c", func() bool { err, _ := h.last(); return err != nil })
	if err, _ := h.last(); !strings.Contains(err.Error(), "node node-c") || !strings.Contains(err.Error(), "not on a directly connected network") {
		t.Errorf("OnHealth got %v, want an error naming node-c's next hop", err)
	}
	want := []string{"10.200.0.0/16 via 192.168.60.2 proto boot", "10.42.2.0/24 via 192.168.60.2 proto 75"}
	if got := routes(t, c.a); !slices.Equal(got, want) {
		t.Errorf("routes with node-c off link: %q, want %q", got, want)
	}

	// Repeated syncs do not repeat the same error; node-c leaving clears it.
	_, n := h.last()
	if err := c.cs.CoreV1().Nodes().Delete(t.Context(), "node-c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "health back", func() bool { err, m := h.last(); return err == nil && m == n+1 })
	_ = r
}

func TestRestartAndResync(t *testing.T) {
	c := newCluster(t)
	_, stop := c.router(c.a, "node-a", nil)
	stop()
	if !hasRoute(t, c.a, "10.42.2.0/24 via 192.168.60.2 proto 75") {
		t.Fatalf("routes: %q", routes(t, c.a))
	}
	r, err := New(Config{
		Nodes: c.factory.Core().V1().Nodes().Informer(), NodeName: "node-a", NetNS: c.a.Path,
		ResyncPeriod: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	eventually(t, "a first sync", func() bool { return r.Applied() > 0 })
	if n := r.changes.Load(); n != 0 {
		t.Errorf("a restart with nothing changed made %d route changes", n)
	}

	// The link goes down and up: the kernel drops the route, the resync
	// puts it back.
	l, err := c.a.NL.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.a.NL.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the kernel to drop the route", func() bool { return !hasRoute(t, c.a, "10.42.2.0/24 via 192.168.60.2 proto 75") })
	if err := c.a.NL.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the route back", func() bool { return hasRoute(t, c.a, "10.42.2.0/24 via 192.168.60.2 proto 75") })
}

func TestCleanup(t *testing.T) {
	c := newCluster(t)
	c.a.Route(t, "10.99.0.0/16", "192.168.60.2")
	_, stop := c.router(c.a, "node-a", nil)
	stop()
	if err := Cleanup(c.a.Path); err != nil {
		t.Fatal(err)
	}
	if got := routes(t, c.a); !slices.Equal(got, []string{"10.99.0.0/16 via 192.168.60.2 proto boot"}) {
		t.Errorf("after Cleanup: %q, want only the foreign route", got)
	}
	if err := Cleanup(c.a.Path); err != nil {
		t.Errorf("Cleanup again: %v", err)
	}
	if err := Cleanup(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a namespace") {
		t.Errorf("Cleanup of a directory: %v, want an error saying it is not a namespace", err)
	}
}

func TestWanted(t *testing.T) {
	nodes := []*corev1.Node{
		node("self", "10.42.0.0/24", "192.168.1.1"),
		node("b", "10.42.1.0/24", "192.168.1.2"),
		node("a-overlaps-self", "10.42.0.128/25", "192.168.1.3"),
		node("c-no-ip", "10.42.3.0/24", ""),
		node("d-no-cidr", "", "192.168.1.5"),
		node("e-bad", "10.42.5.0/33", "192.168.1.6"),
		node("f-same-as-b", "10.42.1.0/24", "192.168.1.7"),
		node("g-v6", "fd00::/64", "192.168.1.8"),
		{ObjectMeta: metav1.ObjectMeta{Name: "h-dual"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"fd00:1::/64", "10.42.8.0/24"}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "1.2.3.4"}, {Type: corev1.NodeInternalIP, Address: "fd00::8"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.9"}}}},
	}
	want, errs := wanted(nodes, "self")
	var got []string
	for _, w := range want {
		got = append(got, w.node+" "+w.dst.String()+" via "+w.gw.String())
	}
	if exp := []string{"b 10.42.1.0/24 via 192.168.1.2", "h-dual 10.42.8.0/24 via 192.168.1.9"}; !slices.Equal(got, exp) {
		t.Errorf("routes %q, want %q", got, exp)
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	for _, s := range []string{"node a-overlaps-self: pod CIDR 10.42.0.128/25 overlaps 10.42.0.0/24 of node self (this node)",
		`node e-bad: spec.podCIDR "10.42.5.0/33"`, "node f-same-as-b: pod CIDR 10.42.1.0/24 overlaps 10.42.1.0/24 of node b"} {
		if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, s) }) {
			t.Errorf("no error %q in %q", s, msgs)
		}
	}
	if len(errs) != 3 {
		t.Errorf("%d errors, want 3: %q", len(errs), msgs)
	}
}

func TestRoutingChanged(t *testing.T) {
	base := node("b", "10.42.1.0/24", "192.168.1.2")
	for _, tc := range []struct {
		name string
		mod  func(n *corev1.Node)
		want bool
	}{
		{"conditions", func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		}, false},
		{"labels", func(n *corev1.Node) { n.Labels = map[string]string{"zone": "b"} }, false},
		{"pod CIDR", func(n *corev1.Node) { n.Spec.PodCIDR = "10.42.9.0/24" }, true},
		{"pod CIDRs", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.0/24", "fd00::/64"} }, true},
		{"internal IP", func(n *corev1.Node) { n.Status.Addresses[0].Address = "192.168.1.20" }, true},
		{"another address", func(n *corev1.Node) {
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "b"})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base.DeepCopy()
			tc.mod(n)
			if got := routingChanged(base, n); got != tc.want {
				t.Errorf("routingChanged = %v, want %v", got, tc.want)
			}
		})
	}
}
