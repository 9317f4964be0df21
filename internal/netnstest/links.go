package netnstest

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

// Link joins a and b with a veth pair, names each end, gives it an address
// (CIDR notation, "" for none) and brings it up.
func Link(t testing.TB, a *NS, aName, aCIDR string, b *NS, bName, bCIDR string) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName, PeerNamespace: netlink.NsFd(int(b.fd.Fd()))}
	if err := a.NL.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s/%s - %s/%s: %v", a.Name, aName, b.Name, bName, err)
	}
	a.Up(t, aName, aCIDR)
	b.Up(t, bName, bCIDR)
}

// Up gives the link an address (when cidr is not "") and brings it up.
func (ns *NS) Up(t testing.TB, name, cidr string) {
	t.Helper()
	l, err := ns.NL.LinkByName(name)
	if err != nil {
		t.Fatalf("netns %s: link %s: %v", ns.Name, name, err)
	}
	if cidr != "" {
		addr, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatalf("address %q: %v", cidr, err)
		}
		if err := ns.NL.AddrAdd(l, addr); err != nil {
			t.Fatalf("netns %s: %s address %s: %v", ns.Name, name, cidr, err)
		}
	}
	if err := ns.NL.LinkSetUp(l); err != nil {
		t.Fatalf("netns %s: %s up: %v", ns.Name, name, err)
	}
}

// Bridge makes a bridge with an address, up.
func (ns *NS) Bridge(t testing.TB, name, cidr string) {
	t.Helper()
	if err := ns.NL.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		t.Fatalf("netns %s: bridge %s: %v", ns.Name, name, err)
	}
	ns.Up(t, name, cidr)
}

// Pod makes a namespace plugged into the node's bridge as the CNI bridge
// plugin does it: a veth whose node end is a bridge port in hairpin mode,
// eth0 with cidr in the pod, and a default route via gw.
func (ns *NS) Pod(t testing.TB, name, bridge, cidr, gw string) *NS {
	t.Helper()
	pod := New(t, name)
	host := "v" + name
	if len(host) > 15 {
		host = host[:15]
	}
	Link(t, ns, host, "", pod, "eth0", cidr)
	br, err := ns.NL.LinkByName(bridge)
	if err != nil {
		t.Fatalf("netns %s: bridge %s: %v", ns.Name, bridge, err)
	}
	l, err := ns.NL.LinkByName(host)
	if err != nil {
		t.Fatalf("netns %s: %s: %v", ns.Name, host, err)
	}
	if err := ns.NL.LinkSetMaster(l, br); err != nil {
		t.Fatalf("netns %s: %s into %s: %v", ns.Name, host, bridge, err)
	}
	if err := ns.NL.LinkSetHairpin(l, true); err != nil {
		t.Fatalf("netns %s: hairpin on %s: %v", ns.Name, host, err)
	}
	pod.DefaultRoute(t, gw)
	return pod
}

// DefaultRoute routes everything via gw.
func (ns *NS) DefaultRoute(t testing.TB, gw string) {
	t.Helper()
	ns.Route(t, "0.0.0.0/0", gw)
}

// Route adds a route to dst via gw in the main table.
func (ns *NS) Route(t testing.TB, dst, gw string) {
	t.Helper()
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatalf("route %s: %v", dst, err)
	}
	if err := ns.NL.RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("netns %s: route %s via %s: %v", ns.Name, dst, gw, err)
	}
}
