package proxy

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// changedChains returns the chains of a whose rules (by handle) differ in b,
// among those whose name contains one of only.
func changedChains(a, b table, only ...string) []string {
	var changed []string
	for name, handles := range a.chains {
		if !slices.ContainsFunc(only, func(s string) bool { return strings.Contains(name, s) }) {
			continue
		}
		if !slices.Equal(handles, b.chains[name]) {
			changed = append(changed, name)
		}
	}
	return changed
}

func TestIncrementalChangeTouchesOnlyItsService(t *testing.T) {
	e := newEnv(t)
	e.backends(3)
	client := e.pod("client", 5)
	slB := slice("b", corev1.ProtocolTCP, 8080, ready("10.42.0.11"), ready("10.42.0.12"))
	e.create(
		service("a", "10.43.1.1"), slice("a", corev1.ProtocolTCP, 8080, ready("10.42.0.11"), ready("10.42.0.12")),
		service("b", "10.43.1.2"), slB,
		service("c", "10.43.1.3"), slice("c", corev1.ProtocolTCP, 8080, ready("10.42.0.12"), ready("10.42.0.13")),
	)
	p := e.proxier(nil)
	before := e.table(DefaultTable)
	if n := len(before.chainsWith("/b/tcp/http")); n != 3 {
		t.Fatalf("b has %d chains, want its service chain and two endpoint chains", n)
	}

	slB.Endpoints = append(slB.Endpoints, slice("b", corev1.ProtocolTCP, 8080, ready("10.42.0.13")).Endpoints...)
	n, ops := p.Applied(), p.ops.Load()
	e.updateSlice(slB)
	eventually(t, "b's third endpoint", func() bool {
		return p.Applied() > n && len(e.table(DefaultTable).chainsWith("/b/tcp/http__10.42.0.13/")) == 1
	})
	after := e.table(DefaultTable)

	if changed := changedChains(before, after, "/a/", "/c/", "services", "masquerading", "nat-", "filter-", "endpoints-check"); len(changed) > 0 {
		t.Errorf("a change to b rewrote other chains: %v", changed)
	}
	if changed := changedChains(before, after, "/b/tcp/http__"); len(changed) > 0 {
		t.Errorf("b's unchanged endpoint chains were rewritten: %v", changed)
	}
	if changed := changedChains(before, after, "svc-"); len(changed) != 1 || !strings.Contains(changed[0], "/b/") {
		t.Errorf("service chains rewritten: %v, want b's only", changed)
	}
	// add the endpoint chain and its 2 rules, rewrite b's service chain (a
	// flush, 1 rule and its map of 3 elements).
	if ops := p.ops.Load() - ops; ops == 0 || ops > 8 {
		t.Errorf("the change took a transaction of %d operations, want a handful (b's chains only)", ops)
	}
	if seen := hits(t, client, "10.43.1.2:80", 40); len(seen) != 3 {
		t.Errorf("b after the change: %v, want all three backends", seen)
	}
}

func TestRestartReconcilesInsteadOfFlushing(t *testing.T) {
	e := newEnv(t)
	e.backends(3)
	client := e.pod("client", 5)
	slUDP := slice("dns", corev1.ProtocolUDP, 8080, ready("10.42.0.11"), ready("10.42.0.12"), ready("10.42.0.13"))
	udp := service("dns", "10.43.2.1", func(s *corev1.Service) {
		s.Spec.Ports[0].Protocol = corev1.ProtocolUDP
		s.Spec.Ports[0].Port = 53
	})
	e.create(
		service("keep", "10.43.2.2"), slice("keep", corev1.ProtocolTCP, 8080, ready("10.42.0.11"), ready("10.42.0.12")),
		service("gone", "10.43.2.3"), slice("gone", corev1.ProtocolTCP, 8080, ready("10.42.0.13")),
		udp, slUDP,
	)
	p1, stop1 := e.start(nil)
	t.Cleanup(stop1)
	e.waitApplied(p1, 0)
	first := e.table(DefaultTable)
	flow, err := client.DialUDP("10.43.2.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Close()
	r, err := flow.Ask(dialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	stop1()
	restartWithNothingChanged(t, e, first)

	changeWhileDown(t, e, backendIP(r.Server))
	p3, stop3 := e.start(nil)
	t.Cleanup(stop3)
	eventually(t, "the changes made while down", func() bool {
		tb := e.table(DefaultTable)
		return p3.Applied() > 0 && len(tb.chainsWith("/gone/")) == 0 && len(tb.chainsWith("/new/")) == 2 &&
			len(tb.chainsWith("/dns/udp/http__"+backendIP(r.Server)+"/")) == 0
	})
	third := e.table(DefaultTable)
	if changed := changedChains(first, third, "/keep/", "services", "masquerading", "nat-", "filter-"); len(changed) > 0 {
		t.Errorf("the reconcile rewrote unchanged chains: %v", changed)
	}
	if seen := hits(t, client, "10.43.2.4:80", 3); seen["be3"] != 3 {
		t.Errorf("the service made while down: %v", seen)
	}
	// The UDP flow DNATed to the backend that left was cleared: the same
	// socket now reaches another one.
	again, err := flow.Ask(dialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if again.Server == r.Server {
		t.Errorf("after a restart, the UDP flow still goes to %s, which left the service", r.Server)
	}
}

// restartWithNothingChanged starts and stops a proxier, which must find the
// table as it wants it and write nothing.
func restartWithNothingChanged(t *testing.T, e *env, before table) {
	p, stop := e.start(nil)
	defer stop()
	e.waitApplied(p, 0)
	if ops := p.ops.Load(); ops != 0 {
		t.Errorf("a restart with nothing changed wrote a transaction of %d operations", ops)
	}
	if after := e.table(DefaultTable); !maps.EqualFunc(before.chains, after.chains, slices.Equal) {
		t.Errorf("a restart with nothing changed changed rules:\nbefore %v\nafter  %v", before.chains, after.chains)
	}
}

// changeWhileDown makes changes while no proxier runs: the backend at
// leaving leaves the dns service, service gone goes, service new comes. It
// returns once the informers have them all.
func changeWhileDown(t *testing.T, e *env, leaving string) {
	var rest []ep
	for _, ip := range []string{"10.42.0.11", "10.42.0.12", "10.42.0.13"} {
		if ip != leaving {
			rest = append(rest, ready(ip))
		}
	}
	e.updateSlice(slice("dns", corev1.ProtocolUDP, 8080, rest...))
	if err := e.cs.CoreV1().Services("default").Delete(t.Context(), "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.create(service("new", "10.43.2.4"), slice("new", corev1.ProtocolTCP, 8080, ready("10.42.0.13")))
	services := e.factory.Core().V1().Services().Informer().GetStore()
	slices := e.factory.Discovery().V1().EndpointSlices().Informer().GetStore()
	eventually(t, "the informers to see the changes", func() bool {
		_, gone, _ := services.GetByKey("default/gone")
		_, added, _ := slices.GetByKey("default/new-abc")
		obj, _, _ := slices.GetByKey("default/dns-abc")
		dns, _ := obj.(*discoveryv1.EndpointSlice)
		return !gone && added && dns != nil && len(dns.Endpoints) == 2
	})
}

// backendIP is the address of the backend pod named be<n>.
func backendIP(name string) string {
	return map[string]string{"be1": "10.42.0.11", "be2": "10.42.0.12", "be3": "10.42.0.13"}[name]
}

func TestCleanup(t *testing.T) {
	e := newEnv(t)
	e.create(service("a", "10.43.3.1"), slice("a", corev1.ProtocolTCP, 8080, ready("10.42.0.11")))
	_, stop := e.start(nil)
	eventually(t, "the table", func() bool { return len(e.table(DefaultTable).chains) > 0 })
	stop()
	if err := Cleanup(e.node.Path, DefaultTable); err != nil {
		t.Fatal(err)
	}
	if tb := e.table(DefaultTable); len(tb.chains) > 0 {
		t.Errorf("after Cleanup the table still has chains: %v", slices.Collect(maps.Keys(tb.chains)))
	}
	if err := Cleanup(e.node.Path, ""); err != nil {
		t.Errorf("Cleanup of a table that is gone: %v", err)
	}
	if err := Cleanup(filepath.Join(t.TempDir(), "nope"), DefaultTable); err == nil {
		t.Error("Cleanup in a namespace that does not exist: no error")
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

func (h *healthLog) snapshot() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.errs)
}

func TestUnusableNftablesIsReportedAndRetried(t *testing.T) {
	e := newEnv(t)
	e.create(service("a", "10.43.4.1"), slice("a", corev1.ProtocolTCP, 8080, ready("10.42.0.11")))

	// A path that is not a namespace yet, then one.
	link := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(link, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var h healthLog
	p, stop := e.start(func(c *Config) {
		c.NetNS = link
		c.OnHealth = h.report
	})
	t.Cleanup(stop)
	eventually(t, "two failures reported", func() bool { return len(h.snapshot()) >= 2 })
	for _, err := range h.snapshot() {
		if err == nil || !strings.Contains(err.Error(), "not a namespace") {
			t.Fatalf("OnHealth got %v, want an error saying the path is not a namespace", err)
		}
	}
	if p.Applied() != 0 {
		t.Fatal("a sync completed without nftables")
	}

	// The namespace appears: the next retry works and says so.
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(e.node.Path, link); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovery", func() bool {
		errs := h.snapshot()
		return p.Applied() > 0 && len(errs) > 0 && errs[len(errs)-1] == nil
	})
	if n := len(e.table(DefaultTable).chainsWith("/a/tcp/http")); n != 2 {
		t.Errorf("after recovery service a has %d chains, want 2", n)
	}
}

func TestMasquerade(t *testing.T) {
	for _, tc := range []struct {
		name       string
		masquerade bool
		want       string
	}{
		{"on", true, nodeIP},
		{"off", false, "10.42.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			client := e.pod("client", 5)
			e.outside.ServeTCP(t, outsideIP+":9000", "outside")
			e.outside.Route(t, "10.42.0.0/16", nodeIP)
			p := e.proxier(func(c *Config) { c.Masquerade = tc.masquerade })
			r, err := client.DialTCP(outsideIP+":9000", dialTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if r.ClientIP() != tc.want {
				t.Errorf("pod traffic leaving the pod network arrives from %s, want %s", r.ClientIP(), tc.want)
			}

			// Pod CIDRs follow the nodes.
			n := p.Applied()
			e.create(node("node-c", "10.42.7.0/24", "192.168.77.4"))
			eventually(t, "node-c's pod CIDR", func() bool {
				return p.Applied() > n && slices.Contains(p.podsForTest(), "10.42.7.0-10.42.8.0")
			})
		})
	}
}

func (p *Proxier) podsForTest() []string {
	c, err := dialNFT(p.cfg.NetNS)
	if err != nil {
		return nil
	}
	defer c.Close()
	o, err := observe(c.Conn, p.table)
	if err != nil || o == nil {
		return nil
	}
	var out []string
	for _, r := range o.state.podCIDRs {
		out = append(out, r.start.String()+"-"+r.end.String())
	}
	return out
}

// TestLargeMaps writes maps whose elements do not fit one netlink attribute
// (64 KiB): 700 services with long names and one service with 1,200
// endpoints. Every element must be in the kernel, and a restart must find
// nothing to change.
func TestLargeMaps(t *testing.T) {
	e := newEnv(t)
	e.backends(1)
	client := e.pod("client", 5)
	var many []ep
	for i := range 1200 {
		many = append(many, ready(fmt.Sprintf("10.42.%d.%d", 100+i/200, i%200+1)))
	}
	e.create(service("many", "10.43.9.1"), slice("many", corev1.ProtocolTCP, 8080, many...))
	long := strings.Repeat("x", 50)
	for i := range 700 {
		name := fmt.Sprintf("%s-%d", long, i)
		e.create(service(name, fmt.Sprintf("10.43.%d.%d", 10+i/200, i%200+1)), slice(name, corev1.ProtocolTCP, 8080, ready("10.42.0.11")))
	}
	p, stop := e.start(nil)
	t.Cleanup(stop)
	e.waitApplied(p, 0)
	tb := e.table(DefaultTable)
	if n := len(tb.elems[mapServiceIPs]); n != 701 {
		t.Errorf("service-ips has %d elements, want 701", n)
	}
	picks := 0
	for m, es := range tb.elems {
		if strings.Contains(m, "/many/") {
			picks = len(es)
		}
	}
	if picks != 1200 {
		t.Errorf("the pick map of the service with 1,200 endpoints has %d elements", picks)
	}
	if r, err := client.DialTCP("10.43.13.100:80", dialTimeout); err != nil || r.Server != "be1" {
		t.Errorf("the 700th service: %v, %v", r, err)
	}
	stop()
	restartWithNothingChanged(t, e, tb)
}
