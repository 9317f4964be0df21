package gitsync

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/schema"
)

// The service allocator (package reconciler) gives Services their cluster
// IPs and node ports after the sync wrote them. What it could not do, a sync
// refuses before writing anything, like an invalid manifest, so that no
// revision lands half-served: a cluster IP or node port written in Git that
// is outside its range, held by another service, or asked for twice; more
// services needing one than there are free; a cluster IP that changes once
// allocated. The checks are the same for a sync (services_sync.go) and a
// plan (plan_services.go); only where the cluster's state comes from differs.

// svcRef names a Service.
type svcRef struct{ namespace, name string }

func (r svcRef) String() string { return r.namespace + "/" + r.name }

// svcEntry is one Service of a revision as the checks see it.
type svcEntry struct {
	ref svcRef
	// want is what the revision asks for, with the allocated fields Git
	// leaves empty kept (keepServiceFields); nil when the revision deletes
	// the service.
	want *corev1.Service
	// cur is what the cluster (or the base revision) holds; nil when new.
	cur *corev1.Service
	// changed: the revision creates, changes or deletes the service.
	changed bool
	// src is the manifest; nil for a deletion.
	src *schema.Object
}

// ipHolder is who holds a cluster IP, by its IPAddress object.
type ipHolder struct {
	service svcRef // zero when the parent is not a service
	what    string // "service shop/cart"
}

// allocView is what the cluster holds, as far as it is known: nothing in a
// plan between two commits.
type allocView struct {
	ips map[netip.Addr]ipHolder
	// ipParents are the services that hold an IPAddress.
	ipParents map[svcRef]bool
	// nodePorts are the node ports of the services the revision does not
	// have (other syncs', controllers').
	nodePorts map[int32]svcRef
}

// allocProblem is one refusal: which service, which field, why.
type allocProblem struct {
	e    *svcEntry
	path string // "spec.clusterIP", "spec.ports[1].nodePort"; "" for the object
	msg  string
}

// allocCheck runs the checks of one revision. A zero cidr or ports turns
// its checks off; the check of a cluster IP that changes always runs.
type allocCheck struct {
	cidr    servicenet.CIDR
	ports   servicenet.PortRange
	view    allocView
	entries []*svcEntry
	// noImmutable leaves a changing cluster IP to the plan's
	// immutable-field risk.
	noImmutable bool

	problems []allocProblem
}

func (a *allocCheck) fail(e *svcEntry, path, format string, args ...any) {
	a.problems = append(a.problems, allocProblem{e: e, path: path, msg: fmt.Sprintf(format, args...)})
}

// run checks every entry and returns the problems, in manifest order.
func (a *allocCheck) run() []allocProblem {
	slices.SortStableFunc(a.entries, func(x, y *svcEntry) int {
		if x.src == nil || y.src == nil {
			return cmp.Compare(boolInt(x.src == nil), boolInt(y.src == nil))
		}
		return cmp.Or(cmp.Compare(x.src.File, y.src.File), cmp.Compare(x.src.Line, y.src.Line))
	})
	for _, e := range a.entries {
		if e.changed && e.want != nil && e.cur != nil && !a.noImmutable {
			a.immutableIP(e)
		}
	}
	if !a.cidr.IsZero() {
		for _, e := range a.entries {
			if e.changed && e.want != nil {
				a.families(e)
			}
		}
		a.clusterIPs()
	}
	if a.ports != (servicenet.PortRange{}) {
		a.nodePorts()
	}
	return a.problems
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// immutableIP refuses a cluster IP that changes once the service has one,
// as Kubernetes does: the allocator would be left holding the old address
// for a service that names another. Becoming or leaving an ExternalName is
// allowed: the address is given back, or a new one allocated.
func (a *allocCheck) immutableIP(e *svcEntry) {
	if e.want.Spec.Type == corev1.ServiceTypeExternalName || e.cur.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	w, c := primaryIP(e.want), primaryIP(e.cur)
	switch {
	case allocatedIP(c) && w == corev1.ClusterIPNone:
		a.fail(e, "spec.clusterIP", "None: the service holds cluster IP %s and cannot become headless once it exists (Kubernetes refuses it too); give the headless service a new name", c)
	case allocatedIP(c) && w != c:
		a.fail(e, "spec.clusterIP", "%s: the service holds cluster IP %s, which cannot change (Kubernetes refuses it too); write %s or leave the field out, or give the service a new name to get another address", w, c, c)
	case c == corev1.ClusterIPNone && w != corev1.ClusterIPNone:
		a.fail(e, "spec.clusterIP", "the service is headless (clusterIP: None) and cannot get a cluster IP once it exists (Kubernetes refuses it too); keep clusterIP: None, or give the service a new name")
	}
}

// families refuses what keelson's IPv4-only service network cannot give, as
// Kubernetes refuses it on a single-stack cluster, instead of an IPv4
// address under an IPv6 family: dual stack required, an IPv6 family, a
// second cluster IP, or clusterIPs that disagree with clusterIP.
func (a *allocCheck) families(e *svcEntry) {
	s := &e.want.Spec
	if s.Type == corev1.ServiceTypeExternalName {
		return
	}
	if p := s.IPFamilyPolicy; p != nil && *p == corev1.IPFamilyPolicyRequireDualStack {
		a.fail(e, "spec.ipFamilyPolicy", "RequireDualStack: keelson's service network %s is IPv4 only; write SingleStack or PreferDualStack, or leave the field out", a.cidr)
	}
	for i, f := range s.IPFamilies {
		if f != corev1.IPv4Protocol {
			a.fail(e, fmt.Sprintf("spec.ipFamilies[%d]", i), "%s: keelson's service network %s is IPv4 only; write IPv4, or leave the field out", f, a.cidr)
		}
	}
	if len(s.ClusterIPs) > 1 {
		a.fail(e, "spec.clusterIPs[1]", "%s: a service has one cluster IP in keelson's IPv4-only service network %s; keep only the first", s.ClusterIPs[1], a.cidr)
	}
	if s.ClusterIP != "" && len(s.ClusterIPs) > 0 && s.ClusterIPs[0] != s.ClusterIP {
		a.fail(e, "spec.clusterIPs[0]", "%s differs from spec.clusterIP %s; write the same address in both, or only one of them", s.ClusterIPs[0], s.ClusterIP)
	}
}

// clusterIPs checks the cluster IPs the revision asks for, and that there
// are enough free addresses for the services that need one.
func (a *allocCheck) clusterIPs() {
	// Addresses of services the revision deletes or turns into an external
	// name are given back: another service of the revision may take them.
	released := map[svcRef]bool{}
	for _, e := range a.entries {
		if e.changed && e.cur != nil && allocatedIP(primaryIP(e.cur)) && (e.want == nil || e.want.Spec.Type == corev1.ServiceTypeExternalName) {
			released[e.ref] = true
		}
	}
	used := map[netip.Addr]bool{a.cidr.APIServerIP(): true, a.cidr.DNSIP(): true}
	for addr, h := range a.view.ips {
		if _, ok := a.cidr.Offset(addr); ok && !released[h.service] {
			used[addr] = true
		}
	}
	claims := map[netip.Addr]*svcEntry{}
	pending := 0
	// Unchanged services first: their addresses are taken whatever the
	// order of the files.
	for _, e := range a.entries {
		if e.changed || e.want == nil || !needsClusterIP(e.want) {
			continue
		}
		ip := primaryIP(e.want)
		addr, err := netip.ParseAddr(ip)
		switch {
		case ip == "" && !a.view.ipParents[e.ref]:
			pending++ // the allocator has yet to give it one
		case err == nil:
			if claims[addr] == nil {
				claims[addr] = e
			}
			if _, ok := a.cidr.Offset(addr); ok {
				used[addr] = true
			}
		}
	}
	var need []*svcEntry
	for _, e := range a.entries {
		if !e.changed || e.want == nil || !needsClusterIP(e.want) {
			continue
		}
		switch ip := primaryIP(e.want); {
		case ip == "":
			need = append(need, e)
		case e.cur != nil && primaryIP(e.cur) == ip:
			// Its own, kept (or refused by immutableIP).
		default:
			a.claimIP(e, ip, claims, used, released)
		}
	}
	if len(need) == 0 {
		return
	}
	if free := a.cidr.Size() - len(used); len(need)+pending > free {
		a.fail(need[0], "", "service CIDR %s is full: %s of this revision %s a cluster IP, %s free",
			a.cidr, count(len(need)+pending, "service", "services"), needs(len(need)+pending), isAre(max(free, 0)))
	}
}

// claimIP checks one cluster IP written in Git for a service that does not
// hold it yet.
func (a *allocCheck) claimIP(e *svcEntry, ip string, claims map[netip.Addr]*svcEntry, used map[netip.Addr]bool, released map[svcRef]bool) {
	const path = "spec.clusterIP"
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() {
		a.fail(e, path, "%q is not an IPv4 address: write an address of the service CIDR %s, None for a headless service, or leave the field out to get one", ip, a.cidr)
		return
	}
	if !a.cidr.Contains(addr) {
		a.fail(e, path, "%s is outside the service CIDR %s: write an address in it, or leave the field out to get one", ip, a.cidr)
		return
	}
	if _, ok := a.cidr.Offset(addr); !ok {
		a.fail(e, path, "%s is the network or broadcast address of the service CIDR %s, which no service can have", ip, a.cidr)
		return
	}
	if h, ok := a.ipHolder(addr, released); ok && h.service != e.ref {
		a.fail(e, path, "%s is held by %s", ip, h.what)
		return
	}
	if f := claims[addr]; f != nil && f != e {
		a.fail(e, path, "%s is asked for by service %s too (%s); give each service its own address", ip, f.ref, f.origin())
		return
	}
	claims[addr] = e
	used[addr] = true
}

// ipHolder returns who holds addr: its IPAddress object's parent, unless the
// revision gives that service's address back; the kubernetes and DNS
// services hold theirs before the control plane made the objects.
func (a *allocCheck) ipHolder(addr netip.Addr, released map[svcRef]bool) (ipHolder, bool) {
	if h, ok := a.view.ips[addr]; ok && !released[h.service] {
		return h, true
	}
	var ref svcRef
	switch addr {
	case a.cidr.APIServerIP():
		ref = svcRef{servicenet.APIServiceNamespace, servicenet.APIServiceName}
	case a.cidr.DNSIP():
		ref = svcRef{servicenet.DNSServiceNamespace, servicenet.DNSServiceName}
	default:
		return ipHolder{}, false
	}
	return ipHolder{service: ref, what: "service " + ref.String()}, true
}

func (e *svcEntry) origin() string {
	if e.src == nil {
		return "the cluster"
	}
	return fmt.Sprintf("%s:%d", e.src.File, e.src.Line)
}

// count is "1 service" or "n services".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// needs is "needs" for one, "need" for several.
func needs(n int) string {
	if n == 1 {
		return "needs"
	}
	return "need"
}

// isAre is "1 is" or "n are".
func isAre(n int) string {
	if n == 1 {
		return "1 is"
	}
	return fmt.Sprintf("%d are", n)
}
