package servicenet

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCIDR(t *testing.T) {
	c, err := ParseCIDR(DefaultServiceCIDR)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.APIServerIP().String(); got != "10.43.0.1" {
		t.Errorf("APIServerIP = %s, want 10.43.0.1", got)
	}
	if got := c.DNSIP().String(); got != "10.43.0.10" {
		t.Errorf("DNSIP = %s, want 10.43.0.10", got)
	}
	if c.Size() != 65534 {
		t.Errorf("Size = %d, want 65534", c.Size())
	}
	if c.StaticBand() != 256 {
		t.Errorf("StaticBand = %d, want 256", c.StaticBand())
	}
	for _, tc := range []struct {
		addr string
		off  int
		ok   bool
	}{
		{"10.43.0.0", 0, false},
		{"10.43.0.1", 1, true},
		{"10.43.1.0", 256, true},
		{"10.43.255.254", 65534, true},
		{"10.43.255.255", 65535, false},
		{"10.44.0.1", 0, false},
	} {
		off, ok := c.Offset(netip.MustParseAddr(tc.addr))
		if off != tc.off || ok != tc.ok {
			t.Errorf("Offset(%s) = %d, %v; want %d, %v", tc.addr, off, ok, tc.off, tc.ok)
		}
		if ok && c.Nth(off).String() != tc.addr {
			t.Errorf("Nth(%d) = %s, want %s", off, c.Nth(off), tc.addr)
		}
	}
	small, err := ParseCIDR("10.96.0.0/28")
	if err != nil {
		t.Fatal(err)
	}
	if small.Size() != 14 || small.StaticBand() != 16 {
		t.Errorf("/28: Size %d StaticBand %d", small.Size(), small.StaticBand())
	}
}

func TestParseCIDRErrors(t *testing.T) {
	for _, s := range []string{"", "10.43.0.0", "10.43.0.0/29", "fd00::/108", "nonsense/16"} {
		if _, err := ParseCIDR(s); err == nil {
			t.Errorf("ParseCIDR(%q): no error", s)
		}
	}
}

func TestPortRange(t *testing.T) {
	r, err := ParsePortRange(DefaultNodePortRange)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != 2768 || !r.Contains(30000) || !r.Contains(32767) || r.Contains(29999) || r.Contains(32768) {
		t.Errorf("range %v: size %d", r, r.Size())
	}
	for _, s := range []string{"", "30000", "3-2", "0-10", "1-70000", "a-b"} {
		if _, err := ParsePortRange(s); err == nil {
			t.Errorf("ParsePortRange(%q): no error", s)
		}
	}
}

func TestNodePortsOfTypes(t *testing.T) {
	no := false
	cases := []struct {
		name          string
		spec          corev1.ServiceSpec
		has, allocate bool
	}{
		{"ClusterIP", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}, false, false},
		{"ExternalName", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}, false, false},
		{"NodePort", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}, true, true},
		{"LoadBalancer", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}, true, true},
		{"LoadBalancer that allocates none", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Service{Spec: tc.spec}
			if got := HasNodePorts(s); got != tc.has {
				t.Errorf("HasNodePorts = %v, want %v", got, tc.has)
			}
			if got := AllocatesNodePorts(s); got != tc.allocate {
				t.Errorf("AllocatesNodePorts = %v, want %v", got, tc.allocate)
			}
		})
	}
}

func TestAddressRefused(t *testing.T) {
	svc := func(conds ...metav1.Condition) *corev1.Service {
		return &corev1.Service{Status: corev1.ServiceStatus{Conditions: conds}}
	}
	cases := map[string]struct {
		svc  *corev1.Service
		want bool
	}{
		"no condition yet":        {svc(), false},
		"allocated":               {svc(metav1.Condition{Type: ConditionIPAllocated, Status: metav1.ConditionTrue}), false},
		"taken":                   {svc(metav1.Condition{Type: ConditionIPAllocated, Status: metav1.ConditionFalse, Reason: "ClusterIPTaken"}), true},
		"another condition false": {svc(metav1.Condition{Type: ConditionEndpointsReady, Status: metav1.ConditionFalse}), false},
	}
	for name, tc := range cases {
		if got := AddressRefused(tc.svc); got != tc.want {
			t.Errorf("%s: AddressRefused = %v, want %v", name, got, tc.want)
		}
	}
}
