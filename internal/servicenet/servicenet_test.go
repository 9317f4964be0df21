package servicenet

import (
	"net/netip"
	"testing"
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
