package clusterdns

import (
	"net/netip"
	"testing"
)

func TestParseReverse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // "" for no address
	}{
		{name: "ipv4", in: "5.0.42.10.in-addr.arpa.", want: "10.42.0.5"},
		{name: "ipv6", in: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", want: "2001:db8::1"},
		{name: "three octets", in: "0.42.10.in-addr.arpa."},
		{name: "five octets", in: "1.5.0.42.10.in-addr.arpa."},
		{name: "octet over 255", in: "256.0.42.10.in-addr.arpa."},
		{name: "leading zero", in: "05.0.42.10.in-addr.arpa."},
		{name: "not a number", in: "x.0.42.10.in-addr.arpa."},
		{name: "empty label", in: ".0.42.10.in-addr.arpa."},
		{name: "ipv6 short", in: "1.0.ip6.arpa."},
		{name: "ipv6 bad nibble", in: "g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."},
		{name: "ipv6 two-char labels", in: "10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."},
		{name: "not reverse", in: "example.com."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := parseReverse(tc.in)
			if got := map[bool]string{true: a.String(), false: ""}[ok]; got != tc.want {
				t.Errorf("parseReverse(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestUndash(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10-42-0-5", "10.42.0.5"},
		{"2001-db8--1", "2001:db8::1"},
		{"10-42-0", ""},
		{"10-42-0-256", ""},
		{"--ffff-a00-1", ""}, // an IPv4 address written as IPv6
		{"fe80--1%eth0", ""},
		{"web", ""},
	} {
		a, ok := undash(tc.in)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != tc.want {
			t.Errorf("undash(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if ok && dashed(a) != tc.in {
			t.Errorf("dashed(%s) = %q, want %q", a, dashed(a), tc.in)
		}
	}
}

func TestReverseZone(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"10.43.0.0/16", "43.10.in-addr.arpa."},
		{"10.96.0.0/12", "10.in-addr.arpa."},
		{"192.168.1.0/24", "1.168.192.in-addr.arpa."},
		{"192.168.1.16/28", "1.168.192.in-addr.arpa."},
	} {
		if got := reverseZone(netip.MustParsePrefix(tc.prefix)); got != tc.want {
			t.Errorf("reverseZone(%s) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}
