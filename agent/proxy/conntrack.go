package proxy

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// conntrack deletes conntrack entries in the proxier's namespace.
type conntrack struct {
	h *netlink.Handle
}

func (p *Proxier) conntrack() (*conntrack, error) {
	if p.ct != nil {
		return p.ct, nil
	}
	var h *netlink.Handle
	var err error
	if p.conn != nil && p.conn.ns != nil {
		h, err = netlink.NewHandleAt(netns.NsHandle(p.conn.ns.Fd()), unix.NETLINK_NETFILTER)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	if err != nil {
		return nil, fmt.Errorf("conntrack netlink socket: %w", err)
	}
	p.ct = &conntrack{h: h}
	return p.ct, nil
}

func (c *conntrack) close() { c.h.Close() }

// staleFlows matches UDP flows that would keep going the wrong way after a
// transaction: those DNATed to an endpoint that is gone (UDP has no
// connection to reset, so a client would send to a dead pod until the entry
// times out), and those to a service address or node port that was not
// NATed because the service had no rule then.
type staleFlows struct {
	gone      map[netip.AddrPort]bool
	targets   map[netip.AddrPort]bool
	nodePorts map[uint16]bool
}

func (s *staleFlows) empty() bool {
	return len(s.gone) == 0 && len(s.targets) == 0 && len(s.nodePorts) == 0
}

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (s *staleFlows) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	if f.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	dst, ok1 := netip.AddrFromSlice(f.Forward.DstIP.To4())
	replySrc, ok2 := netip.AddrFromSlice(f.Reverse.SrcIP.To4())
	if !ok1 || !ok2 {
		return false
	}
	natted := dst != replySrc || f.Forward.DstPort != f.Reverse.SrcPort
	if natted {
		return s.gone[netip.AddrPortFrom(replySrc, f.Reverse.SrcPort)]
	}
	return s.targets[netip.AddrPortFrom(dst, f.Forward.DstPort)] || s.nodePorts[f.Forward.DstPort]
}

// clearFlows deletes the stale UDP flows a committed batch leaves. Failing
// to is logged, not fatal: the flows time out on their own.
func (p *Proxier) clearFlows(b *batch) {
	s := &staleFlows{gone: map[netip.AddrPort]bool{}, targets: map[netip.AddrPort]bool{}, nodePorts: map[uint16]bool{}}
	for _, g := range b.gone {
		if g.proto == "UDP" {
			s.gone[g.addr] = true
		}
	}
	for k := range b.addElems[mapServiceIPs] {
		if ip, proto, port, ok := parseServiceKey(k.bytes()); ok && proto == unix.IPPROTO_UDP {
			s.targets[netip.AddrPortFrom(ip, port)] = true
		}
	}
	for k := range b.addElems[mapServiceNodePorts] {
		if proto, port, ok := parseNodePortKey(k.bytes()); ok && proto == unix.IPPROTO_UDP {
			s.nodePorts[port] = true
		}
	}
	if s.empty() {
		return
	}
	ct, err := p.conntrack()
	if err == nil {
		var n uint
		n, err = ct.h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, s)
		if n > 0 {
			p.log.Debug("stale UDP flows deleted", "flows", n)
		}
	}
	if err != nil {
		p.log.Warn("deleting stale UDP conntrack entries failed; they will time out", "err", err)
	}
}
