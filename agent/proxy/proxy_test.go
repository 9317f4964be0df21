package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/netnstest"
)

const dialTimeout = 5 * time.Second

// backends starts n pods, 10.42.0.11 and on, each serving TCP and UDP on
// 8080 and answering with its name.
func (e *env) backends(n int) []*netnstest.NS {
	var pods []*netnstest.NS
	for i := range n {
		name := fmt.Sprintf("be%d", i+1)
		p := e.pod(name, 11+i)
		p.ServeTCP(e.t, ":8080", name)
		p.ServeUDP(e.t, ":8080", name)
		pods = append(pods, p)
	}
	return pods
}

// hits connects n times and counts the answers by server.
func hits(t *testing.T, from *netnstest.NS, addr string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		r, err := from.DialTCP(addr, dialTimeout)
		if err != nil {
			t.Fatalf("connect to %s from %s: %v", addr, from.Name, err)
		}
		seen[r.Server]++
	}
	return seen
}

func TestClusterIPSpreadsAndFollowsReadiness(t *testing.T) {
	e := newEnv(t)
	e.backends(3)
	client := e.pod("client", 5)
	sl := slice("web", corev1.ProtocolTCP, 8080, ready("10.42.0.11"), ready("10.42.0.12"), ready("10.42.0.13"))
	e.create(service("web", "10.43.0.20"), sl)
	p := e.proxier(nil)
	eventually(t, "web's rules", func() bool { return len(e.table(DefaultTable).chainsWith("/web/tcp/http__")) == 3 })

	seen := hits(t, client, "10.43.0.20:80", 60)
	for _, be := range []string{"be1", "be2", "be3"} {
		if seen[be] == 0 {
			t.Errorf("%s got none of 60 connections: %v", be, seen)
		}
	}
	r, err := client.DialTCP("10.43.0.20:80", dialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if r.ClientIP() != "10.42.0.5" {
		t.Errorf("pod to pod through a service: the backend saw %s, want the client pod's own 10.42.0.5", r.ClientIP())
	}
	// From the node itself: outside the pod network, so masqueraded.
	if seen := hits(t, e.node, "10.43.0.20:80", 30); len(seen) != 3 {
		t.Errorf("from the node: %v, want all three backends", seen)
	}
	if r, err := e.node.DialTCP("10.43.0.20:80", dialTimeout); err != nil || r.ClientIP() != bridgeIP {
		t.Errorf("from the node: %v seen as %s, want the node's address on the pod bridge %s", err, r.ClientIP(), bridgeIP)
	}

	// be2 turns unready: it leaves the rules and gets no new connection.
	sl.Endpoints[1].Conditions.Ready = ptr.To(false)
	sl.Endpoints[1].Conditions.Serving = ptr.To(false)
	before := p.Applied()
	e.updateSlice(sl)
	eventually(t, "be2's chain to go", func() bool {
		return p.Applied() > before && len(e.table(DefaultTable).chainsWith("10.42.0.12/8080")) == 0
	})
	seen = hits(t, client, "10.43.0.20:80", 40)
	if seen["be2"] != 0 || seen["be1"] == 0 || seen["be3"] == 0 {
		t.Errorf("after be2 turned unready: %v, want be1 and be3 only", seen)
	}
}

func TestTerminatingEndpointsServeWhenNoneIsReady(t *testing.T) {
	e := newEnv(t)
	e.backends(2)
	client := e.pod("client", 5)
	e.create(service("web", "10.43.0.20"), slice("web", corev1.ProtocolTCP, 8080,
		ep{ip: "10.42.0.11", node: thisNode, terminating: true},
		ep{ip: "10.42.0.12", node: thisNode}))
	e.proxier(nil)
	seen := hits(t, client, "10.43.0.20:80", 10)
	if seen["be1"] != 10 {
		t.Errorf("no ready endpoint: connections went to %v, want all to the serving, terminating be1", seen)
	}
}

func TestNoEndpointIsRefusedAtOnce(t *testing.T) {
	e := newEnv(t)
	client := e.pod("client", 5)
	e.create(service("empty", "10.43.0.30", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30030
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53})
	}))
	e.proxier(nil)
	for _, tc := range []struct {
		name string
		from *netnstest.NS
		addr string
	}{
		{"from a pod (forward)", client, "10.43.0.30:80"},
		{"from the node (output)", e.node, "10.43.0.30:80"},
		{"node port from outside (input)", e.outside, nodeIP + ":30030"},
		{"node port from the node", e.node, nodeIP + ":30030"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.from.DialTCP(tc.addr, dialTimeout)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("connect to %s: %v, want connection refused", tc.addr, err)
			}
		})
	}
	t.Run("UDP", func(t *testing.T) {
		u, err := client.DialUDP("10.43.0.30:53")
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		if _, err := u.Ask(dialTimeout); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("UDP to a service with no endpoint: %v, want connection refused (ICMP port unreachable)", err)
		}
	})
}

func TestNodePort(t *testing.T) {
	e := newEnv(t)
	e.backends(2)
	e.create(
		service("np", "10.43.0.40", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30040
		}),
		slice("np", corev1.ProtocolTCP, 8080, ready("10.42.0.11"), ready("10.42.0.12")),
		service("np-local", "10.43.0.41", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30041
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}),
		// The second endpoint is on another node: Local leaves it out.
		slice("np-local", corev1.ProtocolTCP, 8080, ready("10.42.0.11"), ep{ip: "10.42.0.12", node: otherNode, ready: true}),
	)
	e.proxier(nil)

	t.Run("from outside", func(t *testing.T) {
		seen := hits(t, e.outside, nodeIP+":30040", 30)
		if seen["be1"] == 0 || seen["be2"] == 0 {
			t.Errorf("node port from outside: %v, want both backends", seen)
		}
		r, err := e.outside.DialTCP(nodeIP+":30040", dialTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if r.ClientIP() != bridgeIP {
			t.Errorf("the backend saw %s, want the node's address on the pod bridge %s (masqueraded)", r.ClientIP(), bridgeIP)
		}
	})
	t.Run("from the node itself", func(t *testing.T) {
		seen := hits(t, e.node, nodeIP+":30040", 30)
		if seen["be1"] == 0 || seen["be2"] == 0 {
			t.Errorf("node port from the node: %v, want both backends", seen)
		}
	})
	t.Run("externalTrafficPolicy Local", func(t *testing.T) {
		seen := hits(t, e.outside, nodeIP+":30041", 20)
		if seen["be1"] != 20 {
			t.Errorf("Local node port: %v, want every connection on this node's be1", seen)
		}
		r, err := e.outside.DialTCP(nodeIP+":30041", dialTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if r.ClientIP() != outsideIP {
			t.Errorf("Local node port: the backend saw %s, want the client's own %s", r.ClientIP(), outsideIP)
		}
	})
}

// TestNodePortLocalWithoutLocalEndpoint: with no endpoint on this node,
// externalTrafficPolicy Local drops what comes from outside, but the node
// itself still reaches the service's endpoints elsewhere.
func TestNodePortLocalWithoutLocalEndpoint(t *testing.T) {
	e := newEnv(t)
	e.backends(2)
	e.create(
		service("np-remote", "10.43.0.42", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30042
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}),
		slice("np-remote", corev1.ProtocolTCP, 8080, ep{ip: "10.42.0.12", node: otherNode, ready: true}),
	)
	e.proxier(nil)
	if seen := hits(t, e.node, nodeIP+":30042", 5); seen["be2"] != 5 {
		t.Errorf("Local node port from the node: %v, want the other node's endpoint be2", seen)
	}
	if _, err := e.outside.DialTCP(nodeIP+":30042", 300*time.Millisecond); !netnstest.IsTimeout(err) {
		t.Errorf("Local node port from outside with no endpoint here: %v, want the connection dropped (a timeout)", err)
	}
}

func TestHairpin(t *testing.T) {
	e := newEnv(t)
	pods := e.backends(1)
	e.create(service("self", "10.43.0.50"), slice("self", corev1.ProtocolTCP, 8080, ready("10.42.0.11")))
	e.proxier(nil)
	r, err := pods[0].DialTCP("10.43.0.50:80", dialTimeout)
	if err != nil {
		t.Fatalf("a pod reaching itself through its service: %v", err)
	}
	if r.Server != "be1" || r.ClientIP() != bridgeIP {
		t.Errorf("hairpin: answered by %s, client seen as %s; want be1 seeing the node's %s", r.Server, r.ClientIP(), bridgeIP)
	}
}

func TestSessionAffinity(t *testing.T) {
	e := newEnv(t)
	e.backends(3)
	client := e.pod("client", 5)
	e.create(service("sticky", "10.43.0.60", func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
	}), slice("sticky", corev1.ProtocolTCP, 8080, ready("10.42.0.11"), ready("10.42.0.12"), ready("10.42.0.13")))
	e.proxier(nil)
	seen := hits(t, client, "10.43.0.60:80", 30)
	if len(seen) != 1 {
		t.Errorf("ClientIP affinity: one client reached %v, want a single backend", seen)
	}
	// Another client is free to land elsewhere, but sticks too.
	other := e.pod("client2", 6)
	if seen := hits(t, other, "10.43.0.60:80", 10); len(seen) != 1 {
		t.Errorf("ClientIP affinity: the second client reached %v, want a single backend", seen)
	}
}

func TestInternalTrafficPolicyLocal(t *testing.T) {
	e := newEnv(t)
	e.backends(2)
	client := e.pod("client", 5)
	sl := slice("local", corev1.ProtocolTCP, 8080, ready("10.42.0.11"), ep{ip: "10.42.0.12", node: otherNode, ready: true})
	e.create(service("local", "10.43.0.70", func(s *corev1.Service) {
		s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	}), sl)
	e.proxier(nil)
	if seen := hits(t, client, "10.43.0.70:80", 20); seen["be1"] != 20 {
		t.Errorf("internalTrafficPolicy Local: %v, want all on this node's be1", seen)
	}

	// No endpoint left on this node: dropped, not sent to the other node.
	sl.Endpoints[0].Conditions.Ready = ptr.To(false)
	sl.Endpoints[0].Conditions.Serving = ptr.To(false)
	e.updateSlice(sl)
	eventually(t, "the local endpoint to go", func() bool {
		return len(e.table(DefaultTable).chainsWith("10.42.0.11/8080")) == 0
	})
	_, err := client.DialTCP("10.43.0.70:80", 300*time.Millisecond)
	if !netnstest.IsTimeout(err) {
		t.Errorf("internalTrafficPolicy Local without a local endpoint: %v, want the connection dropped (a timeout)", err)
	}
}

func TestUDP(t *testing.T) {
	e := newEnv(t)
	e.backends(3)
	client := e.pod("client", 5)
	sl := slice("dns", corev1.ProtocolUDP, 8080, ready("10.42.0.11"), ready("10.42.0.12"), ready("10.42.0.13"))
	e.create(service("dns", "10.43.0.90", func(s *corev1.Service) {
		s.Spec.Ports[0].Protocol = corev1.ProtocolUDP
		s.Spec.Ports[0].Port = 53
	}), sl)
	p := e.proxier(nil)
	if seen := udpHits(t, client, "10.43.0.90:53", 45); len(seen) != 3 {
		t.Errorf("45 UDP flows reached %v, want all three backends", seen)
	}

	// A long-lived flow sticks to its backend (conntrack), until that
	// backend leaves: then its entry is deleted and the flow moves.
	flow, err := client.DialUDP("10.43.0.90:53")
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Close()
	first, err := flow.Ask(dialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if r, err := flow.Ask(dialTimeout); err != nil || r.Server != first.Server {
			t.Fatalf("one UDP flow moved from %s to %v (%v)", first.Server, r.Server, err)
		}
	}
	for i, ep := range sl.Endpoints {
		if ep.Addresses[0] == backendIP(first.Server) {
			sl.Endpoints = append(sl.Endpoints[:i], sl.Endpoints[i+1:]...)
			break
		}
	}
	n := p.Applied()
	e.updateSlice(sl)
	eventually(t, first.Server+" to leave", func() bool {
		return p.Applied() > n && len(e.table(DefaultTable).chainsWith(backendIP(first.Server)+"/8080")) == 0
	})
	r, err := flow.Ask(dialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if r.Server == first.Server {
		t.Errorf("the UDP flow still reaches %s after it left the service", first.Server)
	}
}

// udpHits asks n times, each from a new socket (a new flow), and counts
// the answers by server.
func udpHits(t *testing.T, from *netnstest.NS, addr string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		u, err := from.DialUDP(addr)
		if err != nil {
			t.Fatal(err)
		}
		r, err := u.Ask(dialTimeout)
		u.Close()
		if err != nil {
			t.Fatalf("UDP to %s: %v", addr, err)
		}
		seen[r.Server]++
	}
	return seen
}

func TestServicesWithoutRules(t *testing.T) {
	e := newEnv(t)
	var h healthLog
	e.create(
		service("headless", "None"), slice("headless", corev1.ProtocolTCP, 8080, ready("10.42.0.11")),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "extname"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}},
		service("pending", ""), // no cluster IP allocated yet
		service("broken", "banana"),
		service("sctp", "10.43.0.91", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = corev1.ProtocolSCTP }),
		slice("sctp", corev1.ProtocolSCTP, 8080, ready("10.42.0.11")),
		service("first", "10.43.0.92"), slice("first", corev1.ProtocolTCP, 8080, ready("10.42.0.11")),
	)
	p := e.proxier(func(c *Config) { c.OnHealth = h.report })
	tb := e.table(DefaultTable)
	for _, name := range []string{"/headless/", "/extname/", "/pending/", "/broken/"} {
		if c := tb.chainsWith(name); len(c) > 0 {
			t.Errorf("%s got chains: %v", name, c)
		}
	}
	if len(tb.chainsWith("/sctp/sctp/http")) != 2 {
		t.Errorf("the SCTP service has chains %v", tb.chainsWith("/sctp/"))
	}
	sctpKey := keyOf(serviceKey(netip.MustParseAddr("10.43.0.91"), 132, 80))
	if v, ok := tb.elems[mapServiceIPs][sctpKey]; !ok || !strings.Contains(v.chain, "/sctp/sctp/http") {
		t.Errorf("service-ips has no SCTP element for 10.43.0.91:80: %v", tb.elems[mapServiceIPs])
	}

	// A second service on the same cluster IP and port (bad data) is left
	// out, without failing the transaction; it takes over when the first
	// goes.
	n := p.Applied()
	e.create(service("second", "10.43.0.92"), slice("second", corev1.ProtocolTCP, 8080, ready("10.42.0.12")))
	eventually(t, "a sync after the conflict", func() bool { return p.Applied() > n })
	if c := e.table(DefaultTable).chainsWith("/second/"); len(c) > 0 {
		t.Errorf("the conflicting service got chains: %v", c)
	}
	if err := e.cs.CoreV1().Services("default").Delete(t.Context(), "first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second to take the address", func() bool {
		tb := e.table(DefaultTable)
		return len(tb.chainsWith("/first/")) == 0 && len(tb.chainsWith("/second/")) == 2
	})
	for _, err := range h.snapshot() {
		if err != nil {
			t.Errorf("bad services made a sync fail: %v", err)
		}
	}
}

// TestLoadBalancerAddress: the addresses in a LoadBalancer service's
// status take its traffic as its node port does, from outside (routed to
// the node) and from the node itself; with no endpoint they refuse at once;
// an address of ipMode Proxy is the load balancer's own and is left alone.
func TestLoadBalancerAddress(t *testing.T) {
	e := newEnv(t)
	e.backends(2)
	e.outside.Route(t, "10.99.0.0/24", nodeIP)
	lb := func(name, clusterIP, lbIP string, mod ...func(*corev1.Service)) *corev1.Service {
		return service(name, clusterIP, append([]func(*corev1.Service){func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP}}
		}}, mod...)...)
	}
	e.create(
		lb("web", "10.43.0.60", "10.99.0.5"),
		slice("web", corev1.ProtocolTCP, 8080, ready("10.42.0.11"), ready("10.42.0.12")),
		lb("empty", "10.43.0.61", "10.99.0.6"),
		lb("proxied", "10.43.0.62", "10.99.0.7", func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress[0].IPMode = ptr.To(corev1.LoadBalancerIPModeProxy)
		}),
		slice("proxied", corev1.ProtocolTCP, 8080, ready("10.42.0.11")),
		lb("remote", "10.43.0.63", "10.99.0.8", func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}),
		// Its one endpoint is on another node.
		slice("remote", corev1.ProtocolTCP, 8080, ep{ip: "10.42.0.12", node: otherNode, ready: true}),
	)
	e.proxier(nil)
	// A service whose status names web's address too (bad data): the
	// address stays web's; the clash keeps its cluster IP.
	e.create(lb("clash", "10.43.0.64", "10.99.0.5"), slice("clash", corev1.ProtocolTCP, 8080, ready("10.42.0.12")))
	eventually(t, "the clash's cluster IP", func() bool {
		return e.table(DefaultTable).elems[mapServiceIPs][keyOf(serviceKey(netip.MustParseAddr("10.43.0.64"), 6, 80))].chain != ""
	})
	if seen := hits(t, e.node, "10.43.0.64:80", 5); seen["be2"] != 5 {
		t.Errorf("the clash's cluster IP: %v, want its endpoint be2", seen)
	}

	for _, from := range []*netnstest.NS{e.outside, e.node} {
		seen := hits(t, from, "10.99.0.5:80", 30)
		if seen["be1"] == 0 || seen["be2"] == 0 {
			t.Errorf("load balancer address from %s: %v, want both backends", from.Name, seen)
		}
	}
	r, err := e.outside.DialTCP("10.99.0.5:80", dialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if r.ClientIP() != bridgeIP {
		t.Errorf("the backend saw %s, want the node's address on the pod bridge %s (masqueraded)", r.ClientIP(), bridgeIP)
	}
	// externalTrafficPolicy Local with no endpoint here: outside traffic
	// is dropped (not routed on), the node itself reaches the endpoint.
	if _, err := e.outside.DialTCP("10.99.0.8:80", 300*time.Millisecond); !netnstest.IsTimeout(err) {
		t.Errorf("Local load balancer address with no endpoint here, from outside: %v, want it dropped (a timeout)", err)
	}
	if seen := hits(t, e.node, "10.99.0.8:80", 5); seen["be2"] != 5 {
		t.Errorf("Local load balancer address from the node: %v, want the other node's endpoint be2", seen)
	}
	// A timeout alone would not tell a drop from a packet routed back and
	// forth until it dies: the external chain must end in a drop.
	if !endsInDrop(t, e, "remote") {
		t.Error("the external chain of a Local service with no endpoint here does not end in a drop")
	}
	if _, err := e.outside.DialTCP("10.99.0.6:80", dialTimeout); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("load balancer address with no endpoint: %v, want connection refused", err)
	}
	tb := e.table(DefaultTable)
	for _, m := range []string{mapServiceIPs, mapNoEndpointIPs} {
		for k := range tb.elems[m] {
			if ip, _, _, _ := parseServiceKey(k.bytes()); ip.String() == "10.99.0.7" {
				t.Errorf("an address of ipMode Proxy is in %s", m)
			}
		}
	}

	// Losing the address (the service deleted, or another type) takes its
	// rules away.
	svc, err := e.cs.CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = nil
	if _, err := e.cs.CoreV1().Services("default").Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the freed address refuses", func() bool {
		_, err := e.outside.DialTCP("10.99.0.5:80", 300*time.Millisecond)
		return err != nil
	})
}

// endsInDrop reports whether the external chain of service svc's port ends
// with a drop verdict.
func endsInDrop(t *testing.T, e *env, svc string) bool {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(e.node.Handle())))
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyIPv4}
	for _, name := range e.table(DefaultTable).chainsWith("/" + svc + "/") {
		if !strings.HasPrefix(name, prefixExternal) {
			continue
		}
		rules, err := c.GetRules(tbl, &nftables.Chain{Name: name, Table: tbl})
		if err != nil || len(rules) == 0 {
			t.Fatalf("rules of %s: %v", name, err)
		}
		last := rules[len(rules)-1].Exprs
		v, ok := last[len(last)-1].(*expr.Verdict)
		return ok && v.Kind == expr.VerdictDrop
	}
	t.Fatalf("no external chain of %s", svc)
	return false
}
