package route

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/netnstest"
)

// TestLoadBalancerAddressesAnswerARP: of two nodes on one link, the one
// elected for a load balancer address on the link takes it, so that the
// other (any machine on the segment) reaches it through ARP; with
// externalTrafficPolicy Local the address moves to the node with the
// endpoint; a service that lets its address go takes it from the node.
// An address the router did not add is never touched, and Cleanup removes
// the router's.
func TestLoadBalancerAddressesAnswerARP(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	for _, n := range []string{"node-a", "node-b"} {
		cur, err := c.cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if _, err := c.cs.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.a.ServeTCP(t, ":8080", "node-a")
	c.b.ServeTCP(t, ":8080", "node-b")
	// An address someone else gave node-a, with a label like ours would
	// be if it were not a /32: left alone.
	link, err := c.a.NL.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := netlink.ParseAddr("192.168.60.77/24")
	if err := c.a.NL.AddrAdd(link, foreign); err != nil {
		t.Fatal(err)
	}

	// Both nodes believe the address is at a machine that left: the one
	// that takes it must tell them (gratuitous ARP), before they send it
	// anything. locktime 0 lets an entry be replaced at once.
	const lbIP = "192.168.60.240"
	gone, _ := net.ParseMAC("02:00:00:00:00:99")
	for _, ns := range []*netnstest.NS{c.a, c.b} {
		ns.Sysctl(t, "ipv4/neigh/eth0/locktime", "0")
		l, err := ns.NL.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if err := ns.NL.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_STALE,
			IP: net.ParseIP(lbIP), HardwareAddr: gone}); err != nil {
			t.Fatal(err)
		}
	}

	c.factory.Core().V1().Services().Informer()
	c.factory.Discovery().V1().EndpointSlices().Informer()
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	c.factory.Start(ctx2.Done())
	stopA := c.announcer(c.a, "node-a")
	c.announcer(c.b, "node-b")

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: lbIP}}}}}
	if _, err := c.cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nodes, _ := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	var ptrs []*corev1.Node
	for i := range nodes.Items {
		ptrs = append(ptrs, &nodes.Items[i])
	}
	winner := elect(ptrs, netip.MustParsePrefix("192.168.60.0/24"), netip.MustParseAddr(lbIP), nil)
	other := map[string]string{"node-a": "node-b", "node-b": "node-a"}[winner]
	from := map[string]*netnstest.NS{"node-a": c.b, "node-b": c.a}

	answers := func(want string) {
		t.Helper()
		eventually(t, lbIP+" answered by "+want, func() bool {
			r, err := from[want].DialTCP(lbIP+":8080", 500*time.Millisecond)
			return err == nil && r.Server == want
		})
		if got := holders(t, c, lbIP); !slices.Equal(got, []string{want}) {
			t.Errorf("%s held by %v, want only %s", lbIP, got, want)
		}
	}
	t.Logf("%s elected for %s", winner, lbIP)
	winnerNS := map[string]*netnstest.NS{"node-a": c.a, "node-b": c.b}[winner]
	eth0, err := winnerNS.NL.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other node told that "+lbIP+" moved to "+winner, func() bool {
		return neighbour(t, from[winner], lbIP) == eth0.Attrs().HardwareAddr.String()
	})
	answers(winner)

	// externalTrafficPolicy Local: the node with the endpoint answers.
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	if _, err := c.cs.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1",
		Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}, AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.1.2"}, NodeName: ptr.To(other)}}}
	if _, err := c.cs.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	answers(other)

	// The address goes from the status: no node holds it.
	svc.Status.LoadBalancer.Ingress = nil
	if _, err := c.cs.CoreV1().Services("default").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, lbIP+" let go", func() bool { return len(holders(t, c, lbIP)) == 0 })

	// Cleanup removes what a stopped router added, not the foreign address.
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP}}
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	if _, err := c.cs.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if winner == "node-a" {
		eventually(t, "node-a to take "+lbIP+" again", func() bool { return slices.Equal(holders(t, c, lbIP), []string{"node-a"}) })
		stopA()
		if err := Cleanup(c.a.Path); err != nil {
			t.Fatal(err)
		}
		if got := holders(t, c, lbIP); len(got) != 0 {
			t.Errorf("after Cleanup %s is held by %v", lbIP, got)
		}
	}
	if !hasAddr(t, c.a, "192.168.60.77/24") {
		t.Error("the foreign address was removed")
	}
}

// announcer starts a router that also announces load balancer addresses.
func (c *cluster) announcer(ns *netnstest.NS, nodeName string) func() {
	_, stop := c.start(Config{Nodes: c.factory.Core().V1().Nodes().Informer(), NodeName: nodeName, NetNS: ns.Path,
		Services: c.factory.Core().V1().Services().Informer(), EndpointSlices: c.factory.Discovery().V1().EndpointSlices().Informer()})
	return stop
}

// neighbour is the hardware address ns's neighbour table has for ip on
// eth0, "" when none.
func neighbour(t *testing.T, ns *netnstest.NS, ip string) string {
	t.Helper()
	l, err := ns.NL.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	neighs, err := ns.NL.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if n.IP.String() == ip {
			return n.HardwareAddr.String()
		}
	}
	return ""
}

// holders are the nodes that have ip as an address.
func holders(t *testing.T, c *cluster, ip string) []string {
	var out []string
	for _, n := range []struct {
		name string
		ns   *netnstest.NS
	}{{"node-a", c.a}, {"node-b", c.b}} {
		if hasAddr(t, n.ns, ip+"/32") {
			out = append(out, n.name)
		}
	}
	return out
}

func hasAddr(t *testing.T, ns *netnstest.NS, cidr string) bool {
	t.Helper()
	addrs, err := ns.NL.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IPNet.String() == cidr {
			return true
		}
	}
	return false
}

// TestWantedAddresses: only this node's elected addresses of the
// provider's LoadBalancer services on its networks, not another load
// balancer implementation's (a loadBalancerClass), not the node's own.
func TestWantedAddresses(t *testing.T) {
	ready := func(name, ip string) *corev1.Node {
		n := node(name, "", ip)
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		return n
	}
	nodes := []*corev1.Node{ready("node-a", "192.168.60.1")}
	segs := []segment{{prefix: netip.MustParsePrefix("192.168.60.0/24"), link: 2, name: "eth0"}}
	lb := func(name, ip string, class *string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: class},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip}}}}}
	}
	svcs := []*corev1.Service{
		lb("ours", "192.168.60.240", nil),
		lb("metallb", "192.168.60.241", ptr.To("metallb.io/metallb")),
		lb("off-segment", "10.99.0.5", nil),
		lb("host", "192.168.60.1", nil),
	}
	own := map[netip.Addr]bool{netip.MustParseAddr("192.168.60.1"): true}
	var got []string
	for _, a := range wantedAddresses(svcs, nil, nodes, "node-a", segs, own) {
		got = append(got, a.ip.String()+"@"+a.name)
	}
	if !slices.Equal(got, []string{"192.168.60.240@eth0"}) {
		t.Errorf("wanted %v, want only 192.168.60.240 on eth0", got)
	}
}
