package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/google/nftables"
	corev1 "k8s.io/api/core/v1"
)

// addrRange is an interval of IPv4 addresses, end excluded, as an interval
// set holds it: an element for the start, one flagged as the end.
type addrRange struct {
	start, end netip.Addr
}

// podRanges merges the nodes' pod CIDRs into disjoint, non-adjacent
// intervals: an interval set refuses overlaps, and two adjacent intervals
// would need the same key as one's end and the next one's start. A pod CIDR
// that does not parse is reported and left out.
func podRanges(nodes []*corev1.Node) ([]addrRange, []error) {
	var rs []addrRange
	var errs []error
	for _, n := range nodes {
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, s := range cidrs {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("node %s: spec.podCIDR %q: %w", n.Name, s, err))
				continue
			}
			if !p.Addr().Is4() {
				continue
			}
			p = p.Masked()
			last := lastAddr(p)
			end := last.Next()
			if !end.IsValid() {
				errs = append(errs, fmt.Errorf("node %s: spec.podCIDR %q reaches the end of the address space", n.Name, s))
				continue
			}
			rs = append(rs, addrRange{start: p.Addr(), end: end})
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].start.Less(rs[j].start) })
	var merged []addrRange
	for _, r := range rs {
		if k := len(merged) - 1; k >= 0 && !merged[k].end.Less(r.start) {
			if merged[k].end.Less(r.end) {
				merged[k].end = r.end
			}
			continue
		}
		merged = append(merged, r)
	}
	return merged, errs
}

// podCIDRsChanged reports whether a Node update changed its pod CIDRs.
func podCIDRsChanged(old, obj any) bool {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := obj.(*corev1.Node)
	return !ok1 || !ok2 || o.Spec.PodCIDR != n.Spec.PodCIDR || !slices.Equal(o.Spec.PodCIDRs, n.Spec.PodCIDRs)
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func podCIDRElements(rs []addrRange) []nftables.SetElement {
	elems := make([]nftables.SetElement, 0, 2*len(rs))
	for _, r := range rs {
		elems = append(elems,
			nftables.SetElement{Key: ip4(r.start)},
			nftables.SetElement{Key: ip4(r.end), IntervalEnd: true})
	}
	return elems
}

// writePodCIDRs replaces the pod-cidrs set's content (in the transaction,
// so no packet sees it empty).
func writePodCIDRs(c *nftables.Conn, t *nftables.Table, rs []addrRange) error {
	s := &nftables.Set{Table: t, Name: setPodCIDRs, Interval: true, KeyType: nftables.TypeIPAddr}
	c.FlushSet(s)
	if len(rs) == 0 {
		return nil
	}
	// Some thirty bytes an element: a thousand a message stay well within
	// a netlink attribute's 64 KiB.
	elems := podCIDRElements(rs)
	for len(elems) > 0 {
		n := min(len(elems), 1000)
		if err := c.SetAddElements(s, elems[:n]); err != nil {
			return fmt.Errorf("pod CIDRs: %w", err)
		}
		elems = elems[n:]
	}
	return nil
}

// rangesFromElements reads an interval set's elements back into ranges;
// ok is false when they do not pair up into intervals.
func rangesFromElements(elems []nftables.SetElement) ([]addrRange, bool) {
	type point struct {
		a   netip.Addr
		end bool
	}
	var ps []point
	for _, e := range elems {
		if len(e.Key) != 4 {
			return nil, false
		}
		ps = append(ps, point{netip.AddrFrom4([4]byte(e.Key)), e.IntervalEnd})
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].a == ps[j].a {
			return ps[i].end && !ps[j].end
		}
		return ps[i].a.Less(ps[j].a)
	})
	var rs []addrRange
	for i := 0; i < len(ps); i++ {
		if ps[i].end {
			// The kernel may keep a lone end element at 0.0.0.0, as nft
			// adds one; it bounds nothing.
			if ps[i].a == netip.AddrFrom4([4]byte{}) {
				continue
			}
			return nil, false
		}
		if i+1 >= len(ps) || !ps[i+1].end {
			return nil, false
		}
		rs = append(rs, addrRange{start: ps[i].a, end: ps[i+1].a})
		i++
	}
	return rs, true
}

func sameRanges(a, b []addrRange) bool { return slices.Equal(a, b) }

func secondsDuration(s int32) time.Duration { return time.Duration(s) * time.Second }
