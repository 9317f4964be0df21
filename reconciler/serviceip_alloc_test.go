package reconciler

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/internal/servicenet"
)

func TestIPAllocatorBands(t *testing.T) {
	tests := []struct {
		name string
		cidr string
		// usedAbove marks every address above this offset used.
		usedAbove int
		// picks is how many picks succeed; lo..hi the offsets they may have;
		// full that none is left after them.
		picks, lo, hi int
		full          bool
	}{
		{name: "above the static band first", cidr: "10.96.0.0/24", usedAbove: 1 << 30, picks: 200, lo: 17, hi: 254},
		{name: "the band when the rest is full", cidr: "10.96.0.0/24", usedAbove: 16, picks: 14, lo: 2, hi: 16, full: true},
		{name: "a /28 is all band", cidr: "10.96.0.0/28", usedAbove: 1 << 30, picks: 12, lo: 2, hi: 14, full: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cidr, err := servicenet.ParseCIDR(tt.cidr)
			if err != nil {
				t.Fatal(err)
			}
			a := newIPAllocator(cidr, func(addr netip.Addr) bool {
				off, _ := cidr.Offset(addr)
				return off > tt.usedAbove
			})
			seen := map[netip.Addr]bool{}
			for i := range tt.picks {
				addr, ok := a.pick()
				if !ok {
					t.Fatalf("pick %d: none free", i)
				}
				off, _ := cidr.Offset(addr)
				if seen[addr] || off < tt.lo || off > tt.hi || addr == cidr.APIServerIP() || addr == cidr.DNSIP() {
					t.Fatalf("pick %d: %s (offset %d), want a new one in %d..%d, not the API's or DNS's", i, addr, off, tt.lo, tt.hi)
				}
				seen[addr] = true
			}
			if addr, ok := a.pick(); ok == tt.full {
				t.Errorf("pick after %d: %s %v, want one free %v", tt.picks, addr, ok, !tt.full)
			}
		})
	}
}

// TestIPAllocatorFailedPickComesBack: an address whose reservation was not
// written is handed out again; one being written is not.
func TestIPAllocatorFailedPickComesBack(t *testing.T) {
	cidr, _ := servicenet.ParseCIDR("10.96.0.0/28")
	free := netip.MustParseAddr("10.96.0.7")
	a := newIPAllocator(cidr, func(addr netip.Addr) bool { return addr != free })
	got, ok := a.pick()
	if !ok || got != free {
		t.Fatalf("pick = %s %v, want %s", got, ok, free)
	}
	if got, ok := a.pick(); ok {
		t.Fatalf("second pick = %s while the first is pending", got)
	}
	a.failed(free)
	if got, ok := a.pick(); !ok || got != free {
		t.Fatalf("pick after failure = %s %v, want %s", got, ok, free)
	}
}

func TestNodePorts(t *testing.T) {
	p := newNodePorts(servicenet.PortRange{First: 30000, Last: 30003})
	if h := p.claim("a/web", 30001); h != "" {
		t.Fatalf("claim of a free port: held by %s", h)
	}
	if h := p.claim("b/web", 30001); h != "a/web" {
		t.Fatalf("claim of a/web's port: holder %q", h)
	}
	// A port a/web holds but its spec does not use (a failed write) is
	// what it gets first.
	if got, ok := p.pick("a/web", map[int32]bool{}); !ok || got != 30001 {
		t.Fatalf("pick = %d %v, want 30001 again", got, ok)
	}
	picked := map[int32]bool{30001: true}
	for _, key := range []string{"b/web", "c/web", "d/web"} {
		got, ok := p.pick(key, nil)
		if !ok || picked[got] || got < 30000 || got > 30003 {
			t.Fatalf("pick for %s = %d %v, picked before %v", key, got, ok, picked)
		}
		picked[got] = true
	}
	if got, ok := p.pick("e/web", nil); ok {
		t.Fatalf("pick in a full range = %d", got)
	}
	if !p.keepOnly("a/web", nil) || p.keepOnly("a/web", nil) {
		t.Fatal("keepOnly: want true when a port was given back, then false")
	}
	if got, ok := p.pick("e/web", nil); !ok || got != 30001 {
		t.Fatalf("pick after release = %d %v, want 30001", got, ok)
	}
}

// TestNodePortsRebuild: the older of two services claiming one port keeps
// it; ports of ClusterIP services and outside the range are not taken.
func TestNodePortsRebuild(t *testing.T) {
	at := func(ns string, typ corev1.ServiceType, sec int64, ports ...int32) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "svc", CreationTimestamp: metav1.Unix(sec, 0)},
			Spec: corev1.ServiceSpec{Type: typ}}
		for _, np := range ports {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{NodePort: np})
		}
		return s
	}
	p := newNodePorts(servicenet.PortRange{First: 30000, Last: 30099})
	p.rebuild([]*corev1.Service{
		at("young", corev1.ServiceTypeNodePort, 20, 30010),
		at("old", corev1.ServiceTypeLoadBalancer, 10, 30010, 30011),
		at("plain", corev1.ServiceTypeClusterIP, 5, 30020),
		at("odd", corev1.ServiceTypeNodePort, 5, 8080),
	})
	for port, want := range map[int32]string{30010: "old/svc", 30011: "old/svc", 30020: "", 8080: ""} {
		if got := p.holder[port]; got != want {
			t.Errorf("port %d held by %q, want %q", port, got, want)
		}
	}
}
