package route

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// labelSuffix marks the addresses the router adds for load balancers: their
// label is the interface's name and this (eth0:lb), which is how a router
// finds those it, or a previous agent, added.
const labelSuffix = ":lb"

// labelExcluded keeps a node out of the load balancers, as in Kubernetes.
const labelExcluded = "node.kubernetes.io/exclude-from-external-load-balancers"

// announced is one load balancer address this node answers for, on the
// interface whose network holds it.
type announced struct {
	ip   netip.Addr
	link int
	name string // the interface
}

// segment is one IPv4 network of this node's interfaces.
type segment struct {
	prefix netip.Prefix
	link   int
	name   string
}

// segments are the IPv4 networks of the node's interfaces, but the
// loopback and the addresses this router added.
func segments(h *netlink.Handle) ([]segment, error) {
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fatalError{fmt.Errorf("list addresses: %w", err)}
	}
	names := map[int]string{}
	var out []segment
	for _, a := range addrs {
		if a.IPNet == nil || a.IP.IsLoopback() || isOurs(a) {
			continue
		}
		p, ok := prefixOf(a.IPNet)
		if !ok || p.Bits() >= 31 {
			continue
		}
		name, ok := names[a.LinkIndex]
		if !ok {
			l, err := h.LinkByIndex(a.LinkIndex)
			if err != nil {
				continue
			}
			name = l.Attrs().Name
			names[a.LinkIndex] = name
		}
		out = append(out, segment{prefix: p, link: a.LinkIndex, name: name})
	}
	return out, nil
}

func isOurs(a netlink.Addr) bool {
	ones, bits := a.Mask.Size()
	return ones == bits && len(a.Label) > len(labelSuffix) && a.Label[len(a.Label)-len(labelSuffix):] == labelSuffix
}

// wantedAddresses are the load balancer addresses this node announces: of
// each address of a LoadBalancer service's status that lies on one of the
// node's networks (and is not already the node's own), the node elected
// among the Ready nodes on that network — for externalTrafficPolicy Local,
// those with a ready endpoint of the service — by the lowest hash of node
// and address, so that every agent elects the same one and the addresses
// spread over the nodes.
func wantedAddresses(services []*corev1.Service, epSlices []*discoveryv1.EndpointSlice, nodes []*corev1.Node, self string, segs []segment, own map[netip.Addr]bool) []announced {
	local := endpointNodes(epSlices)
	var out []announced
	seen := map[netip.Addr]bool{}
	for _, svc := range services {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.LoadBalancerClass != nil {
			// A service of a load balancer class is another
			// implementation's, which answers for its addresses.
			continue
		}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			ip, err := netip.ParseAddr(in.IP)
			if err != nil || !ip.Is4() || own[ip] || seen[ip] || in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeProxy {
				continue
			}
			i := slices.IndexFunc(segs, func(s segment) bool { return s.prefix.Contains(ip) })
			if i < 0 {
				continue
			}
			var onlyOn map[string]bool
			if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
				onlyOn = local[svc.Namespace+"/"+svc.Name]
			}
			if elect(nodes, segs[i].prefix, ip, onlyOn) == self {
				seen[ip] = true
				out = append(out, announced{ip: ip, link: segs[i].link, name: segs[i].name})
			}
		}
	}
	return out
}

// elect picks the node that answers for ip: of the Ready nodes whose
// InternalIP is on prefix (and in onlyOn, when set), the one whose name
// hashes lowest with ip; "" when none may.
func elect(nodes []*corev1.Node, prefix netip.Prefix, ip netip.Addr, onlyOn map[string]bool) string {
	best, bestSum := "", [32]byte{}
	for _, n := range nodes {
		if n.DeletionTimestamp != nil || !ready(n) {
			continue
		}
		if _, excluded := n.Labels[labelExcluded]; excluded {
			continue
		}
		if addr, ok := internalIP(n); !ok || !prefix.Contains(addr) {
			continue
		}
		if onlyOn != nil && !onlyOn[n.Name] {
			continue
		}
		sum := sha256.Sum256([]byte(n.Name + "\x00" + ip.String()))
		if best == "" || string(sum[:]) < string(bestSum[:]) {
			best, bestSum = n.Name, sum
		}
	}
	return best
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// endpointNodes maps each service (namespace/name) to the nodes with a
// ready endpoint of it.
func endpointNodes(ss []*discoveryv1.EndpointSlice) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, s := range ss {
		svc := s.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := s.Namespace + "/" + svc
		if out[key] == nil {
			out[key] = map[string]bool{}
		}
		for _, e := range s.Endpoints {
			if e.NodeName != nil && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				out[key][*e.NodeName] = true
			}
		}
	}
	return out
}

// syncAddresses adds the load balancer addresses this node is elected for
// to the interface of their network, where the kernel answers ARP for
// them, and removes those it no longer is. Addresses it did not add are
// never touched.
func (r *Router) syncAddresses(h *netlink.Handle, nodes []*corev1.Node) error {
	segs, err := segments(h)
	if err != nil {
		return err
	}
	all, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fatalError{fmt.Errorf("list addresses: %w", err)}
	}
	own := map[netip.Addr]bool{}
	have := map[netip.Addr]netlink.Addr{}
	for _, a := range all {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		if isOurs(a) {
			have[ip] = a
		} else {
			own[ip] = true
		}
	}
	var services []*corev1.Service
	for _, o := range r.cfg.Services.GetStore().List() {
		if s, ok := o.(*corev1.Service); ok {
			services = append(services, s)
		}
	}
	var eps []*discoveryv1.EndpointSlice
	if r.cfg.EndpointSlices != nil {
		for _, o := range r.cfg.EndpointSlices.GetStore().List() {
			if s, ok := o.(*discoveryv1.EndpointSlice); ok {
				eps = append(eps, s)
			}
		}
	}
	var errs []error
	keep := map[netip.Addr]bool{}
	for _, w := range wantedAddresses(services, eps, nodes, r.cfg.NodeName, segs, own) {
		keep[w.ip] = true
		if a, ok := have[w.ip]; ok && a.LinkIndex == w.link {
			continue
		}
		label := w.name + labelSuffix
		if len(label) >= unix.IFNAMSIZ {
			errs = append(errs, fmt.Errorf("load balancer address %s: interface name %s is too long to label the address", w.ip, w.name))
			continue
		}
		link, err := h.LinkByIndex(w.link)
		if err != nil {
			errs = append(errs, fmt.Errorf("load balancer address %s on %s: %w", w.ip, w.name, err))
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(w.ip.AsSlice()), Mask: net.CIDRMask(32, 32)}, Label: label,
			Flags: unix.IFA_F_NOPREFIXROUTE}
		if err := h.AddrReplace(link, a); err != nil {
			errs = append(errs, fmt.Errorf("load balancer address %s on %s: %w", w.ip, w.name, err))
			continue
		}
		r.changes.Add(1)
		r.log.Info("load balancer address announced", "address", w.ip, "interface", w.name)
		// The address may have been another node's a moment ago: tell the
		// segment now, and a few times more. Lost announcements only delay
		// the move until the neighbours ask again.
		if err := r.garp.announce(w.ip, w.link, link.Attrs().HardwareAddr); err != nil {
			r.log.Warn("load balancer address announced, but not to the neighbours", "address", w.ip, "err", err)
		}
	}
	for ip, a := range have {
		if keep[ip] {
			continue
		}
		r.garp.withdraw(ip)
		if err := h.AddrDel(linkOf(h, a.LinkIndex), &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove load balancer address %s: %w", ip, err))
			continue
		}
		r.changes.Add(1)
		r.log.Info("load balancer address withdrawn", "address", ip)
	}
	return errors.Join(errs...)
}

// linkOf is the link of index i, or a bare one naming only its index (all
// that deleting an address needs) when it cannot be read.
func linkOf(h *netlink.Handle, i int) netlink.Link {
	if l, err := h.LinkByIndex(i); err == nil {
		return l
	}
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: i}}
}
