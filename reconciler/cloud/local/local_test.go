package local

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/reconciler/cloud"
)

// cache stands in for the controller's Service cache (Config.Services).
type cache struct {
	mu   sync.Mutex
	svcs map[string]*corev1.Service
}

func (c *cache) list() []*corev1.Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*corev1.Service
	for _, s := range c.svcs {
		out = append(out, s)
	}
	return out
}

func (c *cache) put(s *corev1.Service) *corev1.Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.svcs[s.Namespace+"/"+s.Name] = s
	return s
}

func (c *cache) drop(s *corev1.Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.svcs, s.Namespace+"/"+s.Name)
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// lbService is a LoadBalancer service created at epoch plus age seconds.
func lbService(name string, age int, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Second))},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func withStatus(ips ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
	}
}

func newLocal(t *testing.T, pool ...string) (cloud.LoadBalancer, *cache) {
	t.Helper()
	c := &cache{svcs: map[string]*corev1.Service{}}
	p, err := New(cloud.Config{LBPool: pool, Services: c.list, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	lb, ok := p.LoadBalancer()
	if !ok {
		t.Fatal("local has no load balancers")
	}
	return lb, c
}

// ensure calls EnsureLoadBalancer on a service put in the cache first, as
// the controller's are, and writes the status back as the controller does.
func ensure(t *testing.T, lb cloud.LoadBalancer, c *cache, svc *corev1.Service, nodes ...*corev1.Node) (string, error) {
	t.Helper()
	c.put(svc)
	st, err := lb.EnsureLoadBalancer(t.Context(), svc, nodes)
	if err != nil {
		return "", err
	}
	svc.Status.LoadBalancer = *st
	return ingress(st), nil
}

func mustEnsure(t *testing.T, lb cloud.LoadBalancer, c *cache, svc *corev1.Service, nodes ...*corev1.Node) string {
	t.Helper()
	got, err := ensure(t, lb, c, svc, nodes...)
	if err != nil {
		t.Fatalf("ensure %s: %v", svc.Name, err)
	}
	return got
}

func ingress(st *corev1.LoadBalancerStatus) string {
	var ips []string
	for _, in := range st.Ingress {
		ips = append(ips, in.IP)
	}
	return strings.Join(ips, ",")
}

func TestLoadBalancerPoolAllocates(t *testing.T) {
	lb, c := newLocal(t, "10.99.0.0/24")
	a := mustEnsure(t, lb, c, lbService("a", 1))
	b := mustEnsure(t, lb, c, lbService("b", 2))
	if a != "10.99.0.1" || b != "10.99.0.2" {
		t.Fatalf("a=%s b=%s, want 10.99.0.1 and 10.99.0.2 (the network address is not given)", a, b)
	}
	// Ensuring again keeps the address, even before the cache shows it.
	again, err := lb.EnsureLoadBalancer(t.Context(), lbService("a", 1), nil)
	if err != nil || ingress(again) != a {
		t.Fatalf("ensure a again: %v %v, want %s", again, err, a)
	}
	st, ok, err := lb.GetLoadBalancer(t.Context(), lbService("b", 2))
	if err != nil || !ok || ingress(st) != b {
		t.Fatalf("get b: %v %v %v", st, ok, err)
	}
}

// A new provider (a restart, a new leader) reads what services hold from
// their status: each keeps its address, and new ones get others.
func TestLoadBalancerPoolKeepsStatusAfterRestart(t *testing.T) {
	lb, c := newLocal(t, "10.99.0.0/24")
	old := c.put(lbService("old", 1, withStatus("10.99.0.7")))
	// A later service whose status shows the same address (two leaders
	// raced) loses it to the first created.
	dup := c.put(lbService("dup", 5, withStatus("10.99.0.7")))
	st, ok, err := lb.GetLoadBalancer(t.Context(), old)
	if err != nil || !ok || ingress(st) != "10.99.0.7" {
		t.Fatalf("get old: %v %v %v", st, ok, err)
	}
	if got := mustEnsure(t, lb, c, lbService("new", 3)); got != "10.99.0.1" {
		t.Fatalf("new got %s, want 10.99.0.1", got)
	}
	if got := mustEnsure(t, lb, c, dup); got != "10.99.0.2" {
		t.Fatalf("dup got %s, want 10.99.0.2: 10.99.0.7 is old's, created first", got)
	}
	if got := mustEnsure(t, lb, c, old); got != "10.99.0.7" {
		t.Fatalf("old got %s, want its 10.99.0.7", got)
	}
	// An address outside the pool (a pool made smaller) is not kept.
	moved := c.put(lbService("moved", 6, withStatus("192.0.2.1")))
	if got := mustEnsure(t, lb, c, moved); got != "10.99.0.3" {
		t.Fatalf("moved got %s, want 10.99.0.3", got)
	}
}

func TestLoadBalancerIPRequested(t *testing.T) {
	lbIP := func(ip string) func(*corev1.Service) { return func(s *corev1.Service) { s.Spec.LoadBalancerIP = ip } }
	lb, c := newLocal(t, "10.99.0.0/24")
	if got := mustEnsure(t, lb, c, lbService("a", 1, lbIP("10.99.0.50"))); got != "10.99.0.50" {
		t.Fatalf("a got %s, want its loadBalancerIP 10.99.0.50", got)
	}
	for _, tc := range []struct {
		name, ip string
		want     error
		text     string
	}{
		{"taken", "10.99.0.50", ErrAddressInUse, "held by service default/a"},
		{"outside", "192.0.2.9", ErrNotInPool, "not in the load balancer pool 10.99.0.0/24"},
		{"garbage", "ten", ErrNotInPool, "not an IP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ensure(t, lb, c, lbService("b-"+tc.name, 2, lbIP(tc.ip)))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err %v, want %v saying %q", err, tc.want, tc.text)
			}
		})
	}
	// A service that asks for another address moves there.
	a := lbService("a", 1, lbIP("10.99.0.60"), withStatus("10.99.0.50"))
	if got := mustEnsure(t, lb, c, a); got != "10.99.0.60" {
		t.Fatalf("a got %s, want 10.99.0.60", got)
	}
	if got := mustEnsure(t, lb, c, lbService("c", 3, lbIP("10.99.0.50"))); got != "10.99.0.50" {
		t.Fatalf("c got %s, want 10.99.0.50, which a left", got)
	}
}

func TestLoadBalancerPoolExhaustedAndFreed(t *testing.T) {
	lb, c := newLocal(t, "10.99.0.10-10.99.0.11")
	a := lbService("a", 1)
	mustEnsure(t, lb, c, a)
	mustEnsure(t, lb, c, lbService("b", 2))
	_, err := ensure(t, lb, c, lbService("c", 3))
	if !errors.Is(err, ErrPoolExhausted) || !strings.Contains(err.Error(), "10.99.0.10-10.99.0.11") || !strings.Contains(err.Error(), "default/c") {
		t.Fatalf("err %v, want ErrPoolExhausted naming the pool and the service", err)
	}
	// a's load balancer is deleted; the cache still shows its status until
	// the controller clears it, yet the address is free.
	if err := lb.EnsureLoadBalancerDeleted(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := lb.GetLoadBalancer(t.Context(), a); ok {
		t.Fatal("a still has a load balancer")
	}
	if got := mustEnsure(t, lb, c, lbService("c", 3)); got != "10.99.0.10" {
		t.Fatalf("c got %s, want 10.99.0.10, freed by a", got)
	}
	// A service gone from the cache without a delete (force-deleted) frees
	// what it held too.
	c.drop(lbService("b", 2))
	if got := mustEnsure(t, lb, c, lbService("d", 4)); got != "10.99.0.11" {
		t.Fatalf("d got %s, want 10.99.0.11, b's", got)
	}
}

func TestLoadBalancerPoolDualStack(t *testing.T) {
	fams := func(policy corev1.IPFamilyPolicy, fs ...corev1.IPFamily) func(*corev1.Service) {
		return func(s *corev1.Service) { s.Spec.IPFamilyPolicy, s.Spec.IPFamilies = &policy, fs }
	}
	both, bothCache := newLocal(t, "10.99.0.0/24", "fd00:99::/64")
	v4only, v4Cache := newLocal(t, "10.99.0.0/24")
	type provider struct {
		lb cloud.LoadBalancer
		c  *cache
	}
	bothP, v4P := provider{both, bothCache}, provider{v4only, v4Cache}
	for _, tc := range []struct {
		name string
		p    provider
		svc  *corev1.Service
		want string
		err  error
	}{
		{"no families: IPv4", bothP, lbService("none", 1), "10.99.0.1", nil},
		{"dual stack", bothP, lbService("dual", 2, fams(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)), "10.99.0.2,fd00:99::1", nil},
		{"IPv6 first", bothP, lbService("six", 3, fams(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv6Protocol, corev1.IPv4Protocol)), "fd00:99::2,10.99.0.3", nil},
		{"IPv6 only gets IPv4 too", bothP, lbService("v6", 4, fams(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)), "10.99.0.4,fd00:99::3", nil},
		{"prefer dual, pool IPv4", v4P, lbService("pref", 5, fams(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)), "10.99.0.1", nil},
		{"require dual, pool IPv4", v4P, lbService("req", 6, fams(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)), "", ErrPoolExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ensure(t, tc.p.lb, tc.p.c, tc.svc)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func node(name string, addrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, a := range addrs {
		typ, ip, _ := strings.Cut(a, "=")
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeAddressType(typ), Address: ip})
	}
	return n
}

func TestLoadBalancerHostAddresses(t *testing.T) {
	lb, c := newLocal(t)
	n1 := node("n1", "InternalIP=192.168.1.1", "Hostname=n1", "InternalIP=fd00::1")
	n2 := node("n2", "InternalIP=192.168.1.2", "ExternalIP=203.0.113.2")
	if got := mustEnsure(t, lb, c, lbService("web", 1), n1, n2); got != "192.168.1.1,203.0.113.2" {
		t.Fatalf("web got %s, want n1's InternalIP and n2's ExternalIP", got)
	}
	// The same port on another protocol is free; the same port and
	// protocol is web's, created first.
	udp := lbService("dns", 2, func(s *corev1.Service) { s.Spec.Ports = []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolUDP}} })
	mustEnsure(t, lb, c, udp, n1)
	later := lbService("web2", 3, func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Port: 8080}, {Port: 80}}
	})
	_, err := ensure(t, lb, c, later, n1, n2)
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "port 80/TCP") || !strings.Contains(err.Error(), "service default/web") {
		t.Fatalf("web2: err %v, want ErrPortInUse naming port 80/TCP and default/web", err)
	}
	// The earlier one is not refused because of the later one.
	mustEnsure(t, lb, c, lbService("web", 1), n1)
	// Once web's load balancer is deleted, web2 gets the port.
	if err := lb.EnsureLoadBalancerDeleted(t.Context(), lbService("web", 1)); err != nil {
		t.Fatal(err)
	}
	if got := mustEnsure(t, lb, c, later, n2); got != "203.0.113.2" {
		t.Fatalf("web2 got %s", got)
	}
	// Node changes: UpdateLoadBalancer lists the new set.
	if err := lb.UpdateLoadBalancer(t.Context(), later, []*corev1.Node{n1}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := lb.GetLoadBalancer(t.Context(), later); ingress(st) != "192.168.1.1" {
		t.Fatalf("after update: %s", ingress(st))
	}
	// A dual-stack service lists IPv6 addresses too.
	v6 := lbService("v6", 4, func(s *corev1.Service) {
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		s.Spec.Ports[0].Port = 443
	})
	if got := mustEnsure(t, lb, c, v6, n1); got != "192.168.1.1,fd00::1" {
		t.Fatalf("v6 got %s", got)
	}
	if _, err := ensure(t, lb, c, lbService("lonely", 5, func(s *corev1.Service) { s.Spec.Ports[0].Port = 9 })); !errors.Is(err, ErrNoNodeAddress) {
		t.Fatalf("no nodes: err %v, want ErrNoNodeAddress", err)
	}
}

func TestCloudLocalInstances(t *testing.T) {
	p, err := New(cloud.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Routes(); ok {
		t.Error("local has routes: the agents route pod CIDRs themselves")
	}
	inst, ok := p.Instances()
	if !ok {
		t.Fatal("local has no instances")
	}
	n := node("n1")
	n.Labels = map[string]string{corev1.LabelTopologyZone: "rack-2", corev1.LabelTopologyRegion: "basement"}
	md, err := inst.InstanceMetadata(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%s %s %s %d", md.ProviderID, md.Zone, md.Region, len(md.NodeAddresses)); got != "local://n1 rack-2 basement 0" {
		t.Errorf("metadata %s", got)
	}
	exists, err1 := inst.InstanceExists(t.Context(), n)
	down, err2 := inst.InstanceShutdown(t.Context(), n)
	if !exists || down || err1 != nil || err2 != nil {
		t.Errorf("exists %v shutdown %v (%v %v)", exists, down, err1, err2)
	}
}

func TestLoadBalancerPoolParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []string
		first string // first address given, "" for an error
		count int
	}{
		{"cidr", []string{"10.99.0.0/24"}, "10.99.0.1", 254},
		{"slash 32", []string{"10.99.0.9/32"}, "10.99.0.9", 1},
		{"slash 31", []string{"10.99.0.8/31"}, "10.99.0.8", 2},
		{"range", []string{" 10.99.0.10 - 10.99.0.12 "}, "10.99.0.10", 3},
		{"comma list", []string{"10.99.0.10-10.99.0.10,10.99.1.0/30"}, "10.99.0.10", 3},
		{"ipv6", []string{"fd00::/126"}, "", 3},
		{"bad cidr", []string{"10.99.0.0/33"}, "", 0},
		{"bad word", []string{"pool"}, "", 0},
		{"mixed families", []string{"10.0.0.1-fd00::1"}, "", 0},
		{"backwards", []string{"10.0.0.9-10.0.0.1"}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePool(tc.in)
			if tc.count == 0 {
				if err == nil {
					t.Fatalf("parsed %v, want an error", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v6 := tc.first == ""
			used := map[netip.Addr]bool{}
			for range tc.count {
				a, ok := p.pick(v6, func(a netip.Addr) bool { return used[a] })
				if !ok {
					t.Fatalf("pool ran out after %d, want %d", len(used), tc.count)
				}
				if len(used) == 0 && !v6 && a.String() != tc.first {
					t.Fatalf("first %s, want %s", a, tc.first)
				}
				used[a] = true
			}
			if a, ok := p.pick(v6, func(a netip.Addr) bool { return used[a] }); ok {
				t.Fatalf("pool gave %s beyond its %d addresses", a, tc.count)
			}
		})
	}
	if p, err := parsePool(nil); p != nil || err != nil {
		t.Errorf("empty pool: %v %v, want none", p, err)
	}
}
