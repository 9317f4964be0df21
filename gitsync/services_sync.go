package gitsync

import (
	"context"
	"fmt"
	"io/fs"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// The resources the checks read, as the store names them.
const (
	servicesResource    = "services"
	ipAddressesResource = "ipaddresses.networking.k8s.io"
)

// checkServices refuses what the service allocator could not do for the
// Services the revision creates or changes (allocCheck), each problem at its
// manifest's file:line. A revision that changes no Service reads nothing;
// one that does reads the IPAddress objects when it asks for a cluster IP,
// and the Services when it asks for a node port, both as the store's shared
// copies.
func (s *Syncer) checkServices(ctx context.Context, fsys fs.FS, changes []*Change) (schema.ErrorList, error) {
	entries, changed := serviceEntries(changes)
	if !changed {
		return nil, nil
	}
	a := &allocCheck{cidr: s.ServiceCIDR, ports: s.NodePorts, entries: entries}
	needIPs, needPorts := a.reads()
	if needIPs {
		items, err := s.listShared(ctx, ipAddressesResource)
		if err != nil {
			return nil, fmt.Errorf("%w: the cluster IPs in use: %v", ErrApply, err)
		}
		a.view.ips, a.view.ipParents = ipHolders(items)
	}
	if needPorts {
		items, err := s.listShared(ctx, servicesResource)
		if err != nil {
			return nil, fmt.Errorf("%w: the node ports in use: %v", ErrApply, err)
		}
		a.view.nodePorts = a.storePorts(items)
	}
	return allocErrors(fsys, a.run()), nil
}

// listShared lists every object of a resource, as the store's shared
// copies: never modify them.
func (s *Syncer) listShared(ctx context.Context, resource string) ([]store.Object, error) {
	r, err := store.ResourceByName(resource)
	if err != nil {
		return nil, err
	}
	l, err := s.Store.List(ctx, r, store.ListOptions{Shared: true})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// serviceEntries are the Services among changes; changed reports whether the
// revision creates or changes one.
func serviceEntries(changes []*Change) (entries []*svcEntry, changed bool) {
	for _, c := range changes {
		if c.res.GVK.Group != "" || c.res.Plural != servicesResource {
			continue // without building the name: a revision has thousands of changes
		}
		cur, _ := c.cur.(*corev1.Service)
		e := &svcEntry{cur: cur}
		switch c.Action {
		case Create, Update:
			w, ok := c.obj.(*corev1.Service)
			if !ok {
				continue
			}
			e.want, e.changed, changed = w, true, true
		case Unchanged:
			e.want = cur
		case Delete:
			e.changed = true
		}
		if c.d != nil {
			e.src = c.d.src
		}
		if cur != nil {
			e.ref = svcRef{cur.Namespace, cur.Name}
		} else if e.want != nil {
			e.ref = svcRef{e.want.Namespace, e.want.Name}
		}
		if e.want != nil || e.cur != nil {
			entries = append(entries, e)
		}
	}
	return entries, changed
}

// reads says what the checks need to know of the cluster: the cluster IPs
// in use when a changed service asks for one (written in Git, or to
// allocate), the node ports in use when one asks for a node port.
func (a *allocCheck) reads() (ips, ports bool) {
	for _, e := range a.entries {
		if !e.changed || e.want == nil {
			continue
		}
		if !a.cidr.IsZero() && needsClusterIP(e.want) && (e.cur == nil || primaryIP(e.cur) != primaryIP(e.want)) {
			ips = true
		}
		if a.ports != (servicenet.PortRange{}) && len(wantedNodePorts(e.want)) > 0 {
			ports = true
		}
	}
	return ips, ports
}

// ipHolders indexes IPAddress objects by address: who holds each, and the
// services that hold one.
func ipHolders(items []store.Object) (map[netip.Addr]ipHolder, map[svcRef]bool) {
	ips := make(map[netip.Addr]ipHolder, len(items))
	parents := make(map[svcRef]bool, len(items))
	for _, o := range items {
		ip, ok := o.(*networkingv1.IPAddress)
		if !ok {
			continue
		}
		addr, err := netip.ParseAddr(ip.Name)
		if err != nil {
			continue // not an address: it reserves nothing
		}
		h := ipHolder{what: "IPAddress " + ip.Name + ", which names no parent"}
		if p := ip.Spec.ParentRef; p != nil {
			if p.Group == "" && p.Resource == "services" {
				h.service = svcRef{p.Namespace, p.Name}
				h.what = "service " + h.service.String()
				parents[h.service] = true
			} else {
				h.what = p.Resource + " " + svcRef{p.Namespace, p.Name}.String()
			}
		}
		ips[addr] = h
	}
	return ips, parents
}

// storePorts indexes the node ports of the cluster's services that the
// revision does not have; for the revision's unchanged services it takes the
// listed copy, newer than the diff's (the allocator may have written since).
func (a *allocCheck) storePorts(items []store.Object) map[int32]svcRef {
	inRevision := make(map[svcRef]*svcEntry, len(a.entries))
	for _, e := range a.entries {
		inRevision[e.ref] = e
	}
	out := map[int32]svcRef{}
	for _, o := range items {
		svc, ok := o.(*corev1.Service)
		if !ok {
			continue
		}
		ref := svcRef{svc.Namespace, svc.Name}
		if e := inRevision[ref]; e != nil {
			if !e.changed {
				e.want, e.cur = svc, svc
			}
			continue
		}
		for _, p := range wantedNodePorts(svc) {
			if p.port != 0 {
				out[p.port] = ref
			}
		}
	}
	return out
}

// allocErrors turns the problems into errors at the fields' positions in
// fsys.
func allocErrors(fsys fs.FS, problems []allocProblem) schema.ErrorList {
	var out schema.ErrorList
	for _, p := range problems {
		if p.e.src == nil {
			continue // a deletion: nothing in Git to point at, and nothing asked
		}
		out = append(out, fieldError(fsys, p.e.src, p.path, p.msg))
	}
	return out
}
