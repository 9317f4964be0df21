package gitsync

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// serviceScope is what a plan knows when it describes its Services.
type serviceScope struct {
	cidr      servicenet.CIDR
	ports     servicenet.PortRange
	old, head map[key]*desired
	// cl is the cluster; nil in a plan between two commits.
	cl *clusterState
	// fsys holds head's changed files, to point at fields.
	fsys fs.FS
	// untouched, in a plan between two commits, decodes the objects of the
	// files the plan did not read that mention one of the words; nil when
	// every file of head was read.
	untouched func(ctx context.Context, words []string) (map[key]*desired, error)
}

// addServices says what each created or changed Service gets and selects,
// flags selectors that select nothing and target ports no selected pod
// defines, and adds the allocation problems of the revision (allocCheck) to
// the errors, as a sync would refuse them.
func (p *Plan) addServices(ctx context.Context, sc *serviceScope) error {
	planned := map[key]*PlannedObject{}
	var words []string
	for _, o := range p.Objects {
		if o.key.res != servicesResource {
			continue
		}
		planned[o.key] = o
		if h, ok := headService(sc, o); ok {
			words = append(words, serviceWords(h)...)
		}
	}
	if len(planned) == 0 {
		return nil
	}
	more := map[key]*desired{}
	if sc.untouched != nil && len(words) > 0 {
		var err error
		if more, err = sc.untouched(ctx, words); err != nil {
			return err
		}
	}
	pool := podPool(sc.head, more)
	for k, o := range planned {
		head, ok := headService(sc, o)
		if !ok {
			continue
		}
		var old *corev1.Service
		if prev := sc.old[k]; prev != nil {
			old, _ = prev.obj.(*corev1.Service)
		}
		o.Effects = append(o.Effects, serviceEffects(old, head, sc.cidr, sc.ports)...)
		if old == nil || !equality.Semantic.DeepEqual(old.Spec.Selector, head.Spec.Selector) ||
			!equality.Semantic.DeepEqual(old.Spec.Ports, head.Spec.Ports) {
			sel := pool.selection(head, sc.cl)
			if old == nil || !equality.Semantic.DeepEqual(old.Spec.Selector, head.Spec.Selector) {
				o.Effects = append(o.Effects, sel.effects()...)
			}
			p.Risks = append(p.Risks, sel.risks(o.Title(), head, sc.cl != nil)...)
		}
	}
	a := &allocCheck{cidr: sc.cidr, ports: sc.ports, entries: planEntries(p, sc, planned, more), noImmutable: true}
	if sc.cl != nil {
		a.view.ips, a.view.ipParents = ipHolders(sc.cl.items(ipAddressesResource))
		a.view.nodePorts = a.storePorts(sc.cl.items(servicesResource))
	}
	p.Errors = append(p.Errors, allocErrors(sc.fsys, a.run())...)
	p.sort()
	return nil
}

// headService is the Service o is in head; false for a deletion.
func headService(sc *serviceScope, o *PlannedObject) (*corev1.Service, bool) {
	h := sc.head[o.key]
	if h == nil || o.Action == Delete {
		return nil, false
	}
	svc, ok := h.obj.(*corev1.Service)
	return svc, ok
}

// planEntries are the plan's Services as the allocation checks see them:
// created and changed ones, deleted ones, and the unchanged ones read.
func planEntries(p *Plan, sc *serviceScope, planned map[key]*PlannedObject, more map[key]*desired) []*svcEntry {
	var out []*svcEntry
	add := func(k key, d *desired, changed bool) {
		e := &svcEntry{ref: svcRef{k.namespace, k.name}, changed: changed}
		if d != nil {
			e.want, _ = d.obj.(*corev1.Service)
			e.src = d.src
		}
		if prev := sc.old[k]; prev != nil {
			e.cur, _ = prev.obj.(*corev1.Service)
		}
		if e.want != nil || e.cur != nil {
			out = append(out, e)
		}
	}
	for k, d := range sc.head {
		if k.res == servicesResource {
			add(k, d, planned[k] != nil)
		}
	}
	for k, d := range more {
		if k.res == servicesResource && sc.head[k] == nil {
			add(k, d, false)
		}
	}
	for k, o := range planned {
		if o.Action == Delete {
			add(k, nil, true)
		}
	}
	return out
}

// serviceWords are what a Service selects and asks for, as text: the
// values of its selector, its cluster IP and node ports, to find the
// untouched files that may hold what it selects or competes with.
func serviceWords(s *corev1.Service) []string {
	var out []string
	for _, v := range s.Spec.Selector {
		out = append(out, v)
	}
	if allocatedIP(s.Spec.ClusterIP) {
		out = append(out, s.Spec.ClusterIP)
	}
	for _, p := range s.Spec.Ports {
		if p.NodePort != 0 {
			out = append(out, strconv.Itoa(int(p.NodePort)))
		}
	}
	return out
}

// items are the cluster's objects of one resource.
func (st *clusterState) items(resource string) []store.Object {
	var out []store.Object
	for k, d := range st.objects {
		if k.res == resource {
			out = append(out, d.obj)
		}
	}
	return out
}

// serviceCIDR is the cluster's service CIDR, from its ServiceCIDR object;
// zero when it has none.
func (st *clusterState) serviceCIDR() servicenet.CIDR {
	d := st.objects[key{"servicecidrs.networking.k8s.io", "", servicenet.ServiceCIDRName}]
	if d == nil {
		return servicenet.CIDR{}
	}
	sc, ok := d.obj.(*networkingv1.ServiceCIDR)
	if !ok {
		return servicenet.CIDR{}
	}
	for _, s := range sc.Spec.CIDRs {
		if c, err := servicenet.ParseCIDR(s); err == nil {
			return c
		}
	}
	return servicenet.CIDR{}
}

// serviceEffects says what a Service gets when old (nil: absent) becomes
// head: its cluster IP, external name, node ports.
func serviceEffects(old, head *corev1.Service, cidr servicenet.CIDR, ports servicenet.PortRange) []string {
	var out []string
	hs := &head.Spec
	if old != nil && old.Spec.Type != hs.Type {
		out = append(out, fmt.Sprintf("type %s → %s", old.Spec.Type, hs.Type))
	}
	switch {
	case hs.Type == corev1.ServiceTypeExternalName:
		if old == nil || old.Spec.ExternalName != hs.ExternalName {
			out = append(out, "external name "+hs.ExternalName)
		}
		if old != nil && allocatedIP(old.Spec.ClusterIP) {
			out = append(out, "gives back cluster IP "+old.Spec.ClusterIP)
		}
	case old != nil && needsClusterIP(old) == needsClusterIP(head):
		// Same kind of address as before.
	case primaryIP(head) == corev1.ClusterIPNone:
		out = append(out, "headless: DNS answers with the selected pods' addresses")
	case primaryIP(head) != "":
		out = append(out, "gets cluster IP "+primaryIP(head))
	default:
		out = append(out, "gets a cluster IP from "+cidr.String())
	}
	return append(out, nodePortEffects(old, head, ports)...)
}

// nodePortEffects says which node ports a change opens and closes.
func nodePortEffects(old, head *corev1.Service, ports servicenet.PortRange) []string {
	var out []string
	had := map[int32]bool{}
	var oldPorts []corev1.ServicePort
	if old != nil && servicenet.HasNodePorts(old) {
		oldPorts = old.Spec.Ports
		for _, p := range wantedNodePorts(old) {
			had[p.port] = true
		}
	}
	hp := head.Spec.Ports
	for _, p := range wantedNodePorts(head) {
		name := ""
		if p.index >= 0 && len(hp) > 1 {
			name = " for port " + portLabel(hp[p.index])
		}
		switch {
		case p.index < 0 && !had[p.port]:
			out = append(out, fmt.Sprintf("health checks on node port %d", p.port))
		case p.port == 0 && (p.index < 0 || !hasPort(oldPorts, hp[p.index])):
			out = append(out, fmt.Sprintf("gets a node port from %s%s", ports, name))
		case p.port != 0 && !had[p.port]:
			out = append(out, fmt.Sprintf("opens node port %d on every node%s", p.port, name))
		}
		delete(had, p.port)
	}
	for _, p := range wantedNodePorts(oldOrEmpty(old)) {
		if p.port != 0 && had[p.port] {
			out = append(out, fmt.Sprintf("closes node port %d", p.port))
			delete(had, p.port)
		}
	}
	return out
}

func oldOrEmpty(s *corev1.Service) *corev1.Service {
	if s == nil {
		return &corev1.Service{}
	}
	return s
}

// hasPort reports whether ports has p: by name, else by number and
// protocol.
func hasPort(ports []corev1.ServicePort, p corev1.ServicePort) bool {
	for _, o := range ports {
		if (p.Name != "" && o.Name == p.Name) || (o.Port == p.Port && o.Protocol == p.Protocol) {
			return true
		}
	}
	return false
}

// portLabel names a port: its name, else number/protocol.
func portLabel(p corev1.ServicePort) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("%d/%s", p.Port, p.Protocol)
}
