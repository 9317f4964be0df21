package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// podRoute is a route to another node's pod CIDR.
type podRoute struct {
	node string
	dst  netip.Prefix
	gw   netip.Addr
}

// fatalError is a failure of the netlink handle itself (the namespace gone,
// netlink refused), rather than of one node's route.
type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }

func isFatal(err error) bool {
	var f fatalError
	return errors.As(err, &f)
}

// wanted computes the routes the nodes ask for. A node without a pod CIDR
// or an InternalIP yet is skipped; one whose pod CIDR does not parse, or
// overlaps this node's or an earlier node's (by name), is an error naming
// it.
func wanted(nodes []*corev1.Node, self string) ([]podRoute, []error) {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	var taken []netip.Prefix
	owner := map[netip.Prefix]string{}
	for _, n := range nodes {
		if n.Name == self {
			for _, p := range podCIDRs(n) {
				taken = append(taken, p)
				owner[p] = n.Name + " (this node)"
			}
		}
	}
	var out []podRoute
	var errs []error
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		ip, ok := internalIP(n)
		if !ok {
			continue
		}
		for _, s := range podCIDRStrings(n) {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("node %s: spec.podCIDR %q: %w", n.Name, s, err))
				continue
			}
			if !p.Addr().Is4() {
				continue
			}
			p = p.Masked()
			if clash := overlapping(taken, p); clash.IsValid() {
				errs = append(errs, fmt.Errorf("node %s: pod CIDR %s overlaps %s of node %s; not routed", n.Name, p, clash, owner[clash]))
				continue
			}
			taken = append(taken, p)
			owner[p] = n.Name
			out = append(out, podRoute{node: n.Name, dst: p, gw: ip})
		}
	}
	return out, errs
}

// routingChanged reports whether a Node update changed what its route is
// made of: its pod CIDRs or its addresses.
func routingChanged(old, obj any) bool {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := obj.(*corev1.Node)
	return !ok1 || !ok2 || !slices.Equal(podCIDRStrings(o), podCIDRStrings(n)) ||
		!slices.Equal(o.Status.Addresses, n.Status.Addresses)
}

func podCIDRStrings(n *corev1.Node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

func podCIDRs(n *corev1.Node) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range podCIDRStrings(n) {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
			out = append(out, p.Masked())
		}
	}
	return out
}

func internalIP(n *corev1.Node) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func overlapping(ps []netip.Prefix, p netip.Prefix) netip.Prefix {
	for _, q := range ps {
		if q.Overlaps(p) {
			return q
		}
	}
	return netip.Prefix{}
}

// sync makes keelson's routes those the nodes want: it adds or replaces the
// missing and changed ones and removes those no node wants. A node it
// cannot route is reported; the others are routed all the same.
func (r *Router) sync(h *netlink.Handle) error {
	var nodes []*corev1.Node
	for _, obj := range r.cfg.Nodes.GetStore().List() {
		if n, ok := obj.(*corev1.Node); ok {
			nodes = append(nodes, n)
		}
	}
	want, errs := wanted(nodes, r.cfg.NodeName)
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fatalError{fmt.Errorf("list routes: %w", err)}
	}
	cur := map[netip.Prefix]netlink.Route{}
	for _, rt := range have {
		if p, ok := prefixOf(rt.Dst); ok {
			cur[p] = rt
		}
	}
	keep := map[netip.Prefix]bool{}
	for _, w := range want {
		link, err := onLink(h, w.gw)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: pod CIDR %s via %s: %w", w.node, w.dst, w.gw, err))
			continue
		}
		keep[w.dst] = true
		if rt, ok := cur[w.dst]; ok && rt.Gw.Equal(w.gw.AsSlice()) && rt.LinkIndex == link {
			continue
		}
		rt := &netlink.Route{Dst: ipNet(w.dst), Gw: net.IP(w.gw.AsSlice()), LinkIndex: link, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
		if err := h.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("node %s: route %s via %s: %w", w.node, w.dst, w.gw, err))
			continue
		}
		r.changes.Add(1)
		r.log.Info("pod route set", "node", w.node, "pod_cidr", w.dst, "via", w.gw)
	}
	for p, rt := range cur {
		if keep[p] {
			continue
		}
		if err := h.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s: %w", p, err))
			continue
		}
		r.changes.Add(1)
		r.log.Info("pod route removed", "pod_cidr", p)
	}
	if r.cfg.Services != nil {
		// An address that cannot be announced is the load balancer's
		// trouble, not the pod network's: it is logged (once per
		// error), not reported as the node's network being down.
		err := r.syncAddresses(h, nodes)
		if isFatal(err) {
			return err
		}
		if msg := fmt.Sprint(err); err != nil && msg != r.lastAddrErr {
			r.log.Error("load balancer addresses", "err", err)
		}
		r.lastAddrErr = ""
		if err != nil {
			r.lastAddrErr = err.Error()
		}
	}
	r.syncs.Add(1)
	return errors.Join(errs...)
}

// onLink checks that gw is a neighbour on a directly connected network, as
// host-gw routing needs (the nodes on one L2 segment), and returns the
// link it is on.
func onLink(h *netlink.Handle, gw netip.Addr) (int, error) {
	rts, err := h.RouteGet(net.IP(gw.AsSlice()))
	if err != nil {
		return 0, fmt.Errorf("no route to the node's address: %w", err)
	}
	if len(rts) == 0 {
		return 0, errors.New("no route to the node's address")
	}
	rt := rts[0]
	switch {
	case rt.Type == unix.RTN_LOCAL:
		return 0, errors.New("the node's address is one of this node's own")
	case rt.Gw != nil:
		return 0, fmt.Errorf("the node's address is not on a directly connected network (it is reached via %s); pod routes need the nodes on one L2 segment", rt.Gw)
	}
	return rt.LinkIndex, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a, bits), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)}
}

// handleAt opens a netlink handle in the namespace at path (the caller's
// when empty), checking that the path is one.
func handleAt(path string) (*netlink.Handle, error) {
	if path == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fatalError{fmt.Errorf("netlink: %w", err)}
		}
		return h, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fatalError{fmt.Errorf("network namespace: %w", err)}
	}
	defer f.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil || st.Type != unix.NSFS_MAGIC {
		return nil, fatalError{fmt.Errorf("network namespace %s: not a namespace (no nsfs mount there)", path)}
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fatalError{fmt.Errorf("netlink in %s: %w", path, err)}
	}
	return h, nil
}

// Cleanup removes keelson's pod routes and load balancer addresses from the
// namespace at netns (the caller's when empty): `keelson agent --cleanup`.
// Other routes and addresses stay.
func Cleanup(netns string) error {
	h, err := handleAt(netns)
	if err != nil {
		return err
	}
	defer h.Close()
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	var errs []error
	for _, rt := range have {
		if err := h.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s: %w", rt.Dst, err))
		}
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list addresses: %w", err))...)
	}
	for _, a := range addrs {
		if !isOurs(a) {
			continue
		}
		if err := h.AddrDel(linkOf(h, a.LinkIndex), &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove load balancer address %s: %w", a.IP, err))
		}
	}
	return errors.Join(errs...)
}
