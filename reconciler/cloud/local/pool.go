package local

import (
	"fmt"
	"net/netip"
	"strings"
)

// addrRange is the addresses from first to last, both included, of one
// family.
type addrRange struct{ first, last netip.Addr }

func (r addrRange) contains(a netip.Addr) bool {
	return a.Is6() == r.first.Is6() && r.first.Compare(a) <= 0 && a.Compare(r.last) <= 0
}

// pool is the addresses load balancers get (--lb-pool).
type pool struct {
	ranges []addrRange
	text   string // as given, for messages
}

// parsePool reads CIDRs (10.99.0.0/24) and ranges (10.99.0.10-10.99.0.20),
// one per entry or several separated by commas. A CIDR's network address
// is not given out, nor an IPv4 CIDR's broadcast address. An empty list is
// nil: no pool.
func parsePool(entries []string) (*pool, error) {
	p := &pool{}
	var texts []string
	for _, e := range entries {
		for s := range strings.SplitSeq(e, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			r, err := parseRange(s)
			if err != nil {
				return nil, fmt.Errorf("load balancer pool entry %q: %w", s, err)
			}
			p.ranges = append(p.ranges, r)
			texts = append(texts, s)
		}
	}
	if len(p.ranges) == 0 {
		return nil, nil
	}
	p.text = strings.Join(texts, ",")
	return p, nil
}

func parseRange(s string) (addrRange, error) {
	const want = "want a CIDR (10.99.0.0/24) or a range (10.99.0.10-10.99.0.20)"
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return addrRange{}, fmt.Errorf("%s: %w", want, err)
		}
		pfx = pfx.Masked()
		r := addrRange{first: pfx.Addr(), last: lastAddr(pfx)}
		host := pfx.Addr().BitLen() - pfx.Bits()
		if host >= 2 {
			r.first = r.first.Next() // the network (IPv6: subnet-router anycast) address
			if r.first.Is4() {
				r.last = r.last.Prev() // broadcast
			}
		}
		return r, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return addrRange{}, fmt.Errorf("%s", want)
	}
	first, err1 := netip.ParseAddr(strings.TrimSpace(lo))
	last, err2 := netip.ParseAddr(strings.TrimSpace(hi))
	switch {
	case err1 != nil || err2 != nil:
		return addrRange{}, fmt.Errorf("%s: not two IP addresses", want)
	case first.Zone() != "" || last.Zone() != "":
		return addrRange{}, fmt.Errorf("addresses with a zone cannot be load balancer addresses")
	}
	first, last = first.Unmap(), last.Unmap()
	switch {
	case first.Is4() != last.Is4():
		return addrRange{}, fmt.Errorf("the range's ends are of different IP families")
	case last.Less(first):
		return addrRange{}, fmt.Errorf("the range ends before it starts")
	}
	return addrRange{first: first, last: last}, nil
}

// lastAddr is the last address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (p *pool) String() string { return p.text }

func (p *pool) contains(a netip.Addr) bool {
	for _, r := range p.ranges {
		if r.contains(a) {
			return true
		}
	}
	return false
}

func (p *pool) hasFamily(v6 bool) bool {
	for _, r := range p.ranges {
		if r.first.Is6() == v6 {
			return true
		}
	}
	return false
}

// pick returns the lowest address of the family that used does not
// report, in the order the ranges were given. It looks at most at one
// address more than used reports per range, so a large IPv6 range costs
// nothing.
func (p *pool) pick(v6 bool, used func(netip.Addr) bool) (netip.Addr, bool) {
	for _, r := range p.ranges {
		if r.first.Is6() != v6 {
			continue
		}
		for a := r.first; a.IsValid(); a = a.Next() {
			if !used(a) {
				return a, true
			}
			if a == r.last {
				break
			}
		}
	}
	return netip.Addr{}, false
}
