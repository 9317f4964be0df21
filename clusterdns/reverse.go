package clusterdns

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

const (
	v4Reverse = ".in-addr.arpa."
	v6Reverse = ".ip6.arpa."
)

// reverseZone is the in-addr.arpa zone covering a prefix, cut at the octet
// boundary at or above it: 10.43.0.0/16 → 43.10.in-addr.arpa.
func reverseZone(p netip.Prefix) string {
	b := p.Addr().As4()
	labels := make([]string, 0, 4)
	for i := p.Bits()/8 - 1; i >= 0; i-- {
		labels = append(labels, strconv.Itoa(int(b[i])))
	}
	if len(labels) == 0 {
		return v4Reverse[1:]
	}
	return strings.Join(labels, ".") + v4Reverse
}

// parseReverse parses a lower-cased reverse name of a whole address:
// 5.0.42.10.in-addr.arpa. or the 32 nibbles of an ip6.arpa name.
func parseReverse(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, v4Reverse); ok {
		var b [4]byte
		for i := range 4 {
			var label string
			rest, label = lastLabel(rest)
			n, err := strconv.ParseUint(label, 10, 8)
			if err != nil || (len(label) > 1 && label[0] == '0') {
				return netip.Addr{}, false
			}
			b[i] = byte(n)
			if i < 3 && rest == "" {
				return netip.Addr{}, false
			}
		}
		return netip.AddrFrom4(b), rest == ""
	}
	if rest, ok := strings.CutSuffix(name, v6Reverse); ok && len(rest) == 63 {
		var b [16]byte
		for i := range 32 {
			c := rest[62-2*i]
			if i < 31 && rest[62-2*i-1] != '.' {
				return netip.Addr{}, false
			}
			n, err := strconv.ParseUint(string(c), 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			b[i/2] |= byte(n) << (4 * (1 - i%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// answerReverse answers a PTR question for the address of a service or an
// endpoint, and says no for other names in the service CIDR's reverse zone.
// It reports false for reverse names it knows nothing about, which go
// upstream.
func (s *Server) answerReverse(m *dns.Msg, q dns.Question, name string) bool {
	if a, ok := parseReverse(name); ok {
		if refs := s.idx.lookupPTR(a); len(refs) > 0 {
			m.Authoritative = true
			if q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY {
				s.nodata(m)
				return true
			}
			for _, r := range refs {
				m.Answer = append(m.Answer, &dns.PTR{Hdr: s.hdr(q.Name, dns.TypePTR), Ptr: r.name + s.dotZone})
			}
			return true
		}
	}
	if name != s.revZone && !strings.HasSuffix(name, "."+s.revZone) {
		return false
	}
	// The zone is cut at an octet, the service CIDR need not be (a /12 has
	// 10.in-addr.arpa.): names of addresses outside the CIDR are someone
	// else's, and go upstream.
	p, below := reversePrefix(name)
	owned := p.Overlaps(s.svcCIDR)
	if below || p.Bits() == 32 {
		owned = s.svcCIDR.Bits() <= p.Bits() && s.svcCIDR.Contains(p.Addr())
	}
	if !owned {
		return false
	}
	m.Authoritative = true
	if name == s.revZone && q.Qtype == dns.TypeSOA {
		m.Answer = append(m.Answer, s.soa(q.Name))
		return true
	}
	if below || p.Bits() == 32 {
		// A name above addresses exists as soon as one address below it
		// does; an address or a name below one that has no record does not.
		m.Rcode = dns.RcodeNameError
	}
	m.Ns = append(m.Ns[:0], s.soa(s.revZone))
	return true
}

// reversePrefix reads the addresses an in-addr.arpa name stands for: the
// prefix its leading numeric labels spell (43.10.in-addr.arpa. is
// 10.43.0.0/16), and below when more labels follow them, which makes a name
// under that prefix that is no address.
func reversePrefix(name string) (p netip.Prefix, below bool) {
	rest, _ := strings.CutSuffix(name, v4Reverse)
	var b [4]byte
	n := 0
	for rest != "" {
		next, label := lastLabel(rest)
		v, err := strconv.ParseUint(label, 10, 8)
		if n == 4 || err != nil || strconv.Itoa(int(v)) != label {
			below = true
			break
		}
		b[n], n, rest = byte(v), n+1, next
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), 8*n), below
}
