package reconciler

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/keelson/keelson/internal/servicenet"
)

// sliceSpec says what one controller's EndpointSlices of one service look
// like.
type sliceSpec struct {
	svc       *corev1.Service
	managedBy string
	max       int // endpoints a slice holds at most
}

var serviceGVK = corev1.SchemeGroupVersion.WithKind("Service")

// labels are the slice's labels: the service's name and the manager, never
// the service's own labels (keelson.dev/source would make gitsync prune the
// slice as an object of its sync).
func (sp sliceSpec) labels() map[string]string {
	return map[string]string{servicenet.LabelServiceName: sp.svc.Name, servicenet.LabelManagedBy: sp.managedBy}
}

// metaOK reports whether a slice already has the labels, owner and address
// type the spec asks for.
func (sp sliceSpec) metaOK(s *discoveryv1.EndpointSlice) bool {
	ref := metav1.GetControllerOfNoCopy(s)
	return s.AddressType == discoveryv1.AddressTypeIPv4 && len(s.OwnerReferences) == 1 && ref != nil &&
		ref.UID == sp.svc.UID && ref.Kind == "Service" && ref.APIVersion == "v1" &&
		s.Labels[servicenet.LabelServiceName] == sp.svc.Name && s.Labels[servicenet.LabelManagedBy] == sp.managedBy
}

// build returns the slice a draft stands for: the cached slice's copy with
// new ports and endpoints, or a new one.
func (sp sliceSpec) build(d *draft) *discoveryv1.EndpointSlice {
	var s *discoveryv1.EndpointSlice
	if d.slice != nil {
		s = d.slice.DeepCopy()
	} else {
		s = &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
			Namespace: sp.svc.Namespace, Name: sp.svc.Name + "-" + utilrand.String(5),
		}}
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	maps.Copy(s.Labels, sp.labels())
	s.OwnerReferences = []metav1.OwnerReference{ownerRef(sp.svc, serviceGVK)}
	s.AddressType = discoveryv1.AddressTypeIPv4
	s.Ports = d.ports
	s.Endpoints = d.eps
	if s.Endpoints == nil {
		s.Endpoints = []discoveryv1.Endpoint{}
	}
	return s
}

// draft is a slice being planned: an existing one (slice set) or a new one.
type draft struct {
	slice   *discoveryv1.EndpointSlice // the cached slice; never modified
	key     string
	ports   []discoveryv1.EndpointPort
	eps     []discoveryv1.Endpoint
	changed bool
}

// slicePlan is the writes that bring a service's slices to what it wants.
type slicePlan struct {
	create, update, delete []*discoveryv1.EndpointSlice
}

func (p slicePlan) writes() int { return len(p.create) + len(p.update) + len(p.delete) }

// planSlices works out the fewest slice writes from existing to want,
// because the node proxy on every node turns each written slice into packet
// rules: an endpoint that did not change stays in its slice untouched, a
// changed one is replaced in place, a gone one is dropped from its slice. New
// endpoints go first into slices written anyway, then into slices that would
// be deleted (a write that replaces a deletion), then into untouched slices
// with room, and only then into new slices. Emptied slices are deleted,
// except one left empty when the service has no endpoint at all.
func planSlices(sp sliceSpec, existing []*discoveryv1.EndpointSlice, want endpointSet) slicePlan {
	existing = slices.Clone(existing)
	slices.SortFunc(existing, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	placed := map[string]map[string]bool{}
	for pk := range want {
		placed[pk] = map[string]bool{}
	}
	var kept []*draft
	var free []*discoveryv1.EndpointSlice
	for _, s := range existing {
		d := keepEndpoints(sp, s, want, placed)
		if d == nil {
			free = append(free, s)
			continue
		}
		kept = append(kept, d)
	}
	var created []*draft
	for _, pk := range slices.Sorted(maps.Keys(want)) {
		g := want[pk]
		var rest []string
		for _, k := range slices.Sorted(maps.Keys(g.eps)) {
			if !placed[pk][k] {
				rest = append(rest, k)
			}
		}
		rest = fill(sp, rest, g, kept, pk, true)
		for len(rest) > 0 && len(free) > 0 {
			d := &draft{slice: free[0], key: pk, ports: g.ports, changed: true}
			free = free[1:]
			rest = take(sp, d, rest, g)
			kept = append(kept, d)
		}
		rest = fill(sp, rest, g, kept, pk, false)
		for len(rest) > 0 {
			d := &draft{key: pk, ports: g.ports, changed: true}
			rest = take(sp, d, rest, g)
			created = append(created, d)
		}
	}
	if len(kept) == 0 && len(created) == 0 {
		kept, free, created = placeholder(sp, free)
	}
	var plan slicePlan
	for _, d := range kept {
		if d.changed {
			plan.update = append(plan.update, sp.build(d))
		}
	}
	for _, d := range created {
		plan.create = append(plan.create, sp.build(d))
	}
	plan.delete = free
	return plan
}

// keepEndpoints makes the draft of an existing slice: the endpoints it holds
// that are still wanted, updated in place. It returns nil when nothing of it
// is wanted any more.
func keepEndpoints(sp sliceSpec, s *discoveryv1.EndpointSlice, want endpointSet, placed map[string]map[string]bool) *draft {
	pk := portsKey(s.Ports)
	g := want[pk]
	if g == nil {
		return nil
	}
	d := &draft{slice: s, key: pk, ports: s.Ports, changed: !sp.metaOK(s)}
	for _, e := range s.Endpoints {
		k := endpointKey(e)
		w, ok := g.eps[k]
		if !ok || placed[pk][k] || len(d.eps) >= sp.max {
			d.changed = true
			continue
		}
		placed[pk][k] = true
		if !equality.Semantic.DeepEqual(w, e) {
			d.changed = true
			e = w
		}
		d.eps = append(d.eps, e)
	}
	if len(d.eps) == 0 {
		return nil
	}
	return d
}

// fill puts endpoints of rest into the drafts of port set pk that have room,
// those already changed (changed) or the untouched ones (!changed).
func fill(sp sliceSpec, rest []string, g *endpointGroup, drafts []*draft, pk string, changed bool) []string {
	for _, d := range drafts {
		if len(rest) == 0 {
			break
		}
		if d.key == pk && d.changed == changed && len(d.eps) < sp.max {
			rest = take(sp, d, rest, g)
			d.changed = true
		}
	}
	return rest
}

// take moves endpoints from rest into d up to the slice size, returning
// those left.
func take(sp sliceSpec, d *draft, rest []string, g *endpointGroup) []string {
	n := min(sp.max-len(d.eps), len(rest))
	for _, k := range rest[:n] {
		d.eps = append(d.eps, g.eps[k])
	}
	return rest[n:]
}

// placeholder keeps one empty slice for a service without endpoints (as
// Kubernetes does, so that readers see the service is handled): an existing
// one when there is one, preferring one already empty.
func placeholder(sp sliceSpec, free []*discoveryv1.EndpointSlice) (kept []*draft, rest []*discoveryv1.EndpointSlice, created []*draft) {
	if len(free) == 0 {
		return nil, nil, []*draft{{changed: true}}
	}
	pick := 0
	for i, s := range free {
		if len(s.Endpoints) == 0 && len(s.Ports) == 0 && sp.metaOK(s) {
			pick = i
			break
		}
	}
	s := free[pick]
	d := &draft{slice: s, changed: len(s.Endpoints) > 0 || len(s.Ports) > 0 || !sp.metaOK(s)}
	rest = append(slices.Clone(free[:pick]), free[pick+1:]...)
	return []*draft{d}, rest, nil
}
