package ui

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/health"
	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/store"
)

// treeNode is one object of a source's tree, coloured by its health.
type treeNode struct {
	Kind, Namespace, Name string
	Health                string
	Message               string
	// Info is the object's few words: "2/3 ready", "Running, 1 restart".
	Info string
	// Link is the object's page.
	Link     string
	Children []*treeNode
	// More, when not 0, makes the node a line saying how many objects of
	// Kind were left out, and Info their health.
	More int
}

// maxWatches bounds the watches one page holds open; a source spread over
// more collections than that is live through its Sync alone.
const maxWatches = 16

// sourceTree is the tree of one source's objects and the watches that see
// it change.
type sourceTree struct {
	roots   []*treeNode
	watches []watch
	// counts are the objects by health, those left out of the tree too.
	counts map[string]int
}

// Resources of the objects controllers make under a source's objects.
var (
	podsRes    = store.MustResource("pods")
	rsRes      = store.MustResource("replicasets.apps")
	jobsRes    = store.MustResource("jobs.batch")
	slicesRes  = store.MustResource("endpointslices.discovery.k8s.io")
	claimsRes  = store.MustResource("persistentvolumeclaims")
	eventsRes  = store.MustResource("events")
	nodesRes   = store.MustResource("nodes")
	classesRes = store.MustResource("ingressclasses.networking.k8s.io")
	childrenOf = map[string][]store.Resource{
		"Deployment":  {rsRes, podsRes},
		"ReplicaSet":  {podsRes},
		"StatefulSet": {podsRes, claimsRes},
		"DaemonSet":   {podsRes},
		"Job":         {podsRes},
		"CronJob":     {jobsRes, podsRes},
		"Service":     {slicesRes, podsRes},
	}
)

// treeReader reads, once each, the collections a tree needs.
type treeReader struct {
	ctx   context.Context
	api   *client
	lists map[string]listed // by resource and namespace
	t     *sourceTree
	errs  []error
	// pods are the pods read, by namespace/name, of the namespaces in
	// indexed.
	pods    map[string]store.Object
	indexed map[string]bool
	counted map[types.UID]bool
}

func (tr *treeReader) list(res store.Resource, ns string, q url.Values) []store.Object {
	key := res.String() + "/" + ns + "?" + q.Encode()
	if l, ok := tr.lists[key]; ok {
		return l.items
	}
	l, err := tr.api.list(tr.ctx, res, ns, q)
	if err != nil {
		where := "at the cluster scope"
		if ns != "" {
			where = "in namespace " + ns
		}
		tr.errs = append(tr.errs, fmt.Errorf("%s %s: %w", res, where, err))
	}
	tr.lists[key] = l
	if err == nil {
		tr.t.watches = append(tr.t.watches, watchOf(apiPath(res, ns), q, l.rv))
	}
	return l.items
}

// count counts an object of the tree once, though a pod may be shown
// twice (under its ReplicaSet and behind its Service).
func (tr *treeReader) count(obj store.Object, n *treeNode) {
	if obj != nil {
		if tr.counted[obj.GetUID()] {
			return
		}
		tr.counted[obj.GetUID()] = true
	}
	tr.t.counts[n.Health]++
}

// healthContext is what obj's health rule looks up: the IngressClasses,
// read once, for an Ingress.
func (tr *treeReader) healthContext(obj store.Object) health.Context {
	if _, ok := obj.(*networkingv1.Ingress); !ok {
		return health.Context{}
	}
	classes := ingressclass.Map{}
	for _, o := range tr.list(classesRes, "", nil) {
		if c, ok := o.(*networkingv1.IngressClass); ok {
			classes[c.Name] = c
		}
	}
	return health.Context{IngressClasses: classes}
}

// cached is a collection list read already, unfiltered.
func (tr *treeReader) cached(res store.Resource, ns string) []store.Object {
	return tr.lists[res.String()+"/"+ns+"?"].items
}

// podNamed finds a pod of namespace ns in the pods read already.
func (tr *treeReader) podNamed(ns, name string) (store.Object, bool) {
	if !tr.indexed[ns] {
		tr.indexed[ns] = true
		for _, p := range tr.cached(podsRes, ns) {
			tr.pods[ns+"/"+p.GetName()] = p
		}
	}
	p, ok := tr.pods[ns+"/"+name]
	return p, ok
}

// buildTree reads a source's objects and what controllers made under them.
func buildTree(ctx context.Context, api *client, s *keelsonv1alpha1.Sync) (*sourceTree, error) {
	tr := &treeReader{ctx: ctx, api: api, lists: map[string]listed{}, t: &sourceTree{counts: map[string]int{}},
		pods: map[string]store.Object{}, indexed: map[string]bool{}, counted: map[types.UID]bool{}}
	bySource := url.Values{"labelSelector": {keelsonv1alpha1.LabelSource + "=" + s.Name}}
	owned := map[types.UID][]store.Object{}
	seen := map[string]bool{}
	for _, ref := range s.Status.Inventory {
		gv, _ := schema.ParseGroupVersion(ref.APIVersion)
		res, err := store.ResourceFor(gv.WithKind(ref.Kind))
		n := &treeNode{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
		tr.t.roots = append(tr.t.roots, n)
		if err != nil {
			n.Health, n.Message = string(health.Unknown), "keelson does not know this kind"
			tr.t.counts[n.Health]++
			continue
		}
		var obj store.Object
		for _, o := range tr.list(res, ref.Namespace, bySource) {
			if o.GetName() == ref.Name {
				obj = o
				break
			}
		}
		h := tr.healthContext(obj).OfKind(res.GVK.GroupKind(), obj)
		n.Health, n.Message, n.Info = string(h.Status), h.Message, info(obj)
		tr.count(obj, n)
		if obj == nil {
			continue
		}
		n.Link = objectLink(res, ref.Namespace, ref.Name)
		for _, cr := range childrenOf[ref.Kind] {
			key := cr.String() + "/" + ref.Namespace
			if seen[key] {
				continue
			}
			seen[key] = true
			for _, c := range tr.list(cr, ref.Namespace, nil) {
				if o := metav1.GetControllerOf(c); o != nil {
					owned[o.UID] = append(owned[o.UID], c)
				}
			}
		}
		n.Children = tr.children(obj, owned, 0)
	}
	sort.SliceStable(tr.t.roots, func(i, j int) bool { return less(tr.t.roots[i], tr.t.roots[j]) })
	if len(tr.t.watches) > maxWatches {
		tr.t.watches = nil
	}
	return tr.t, errors.Join(tr.errs...)
}

// children are the objects under obj: what it controls, the slices of a
// service and their pods, the claims of a stateful pod.
func (tr *treeReader) children(obj store.Object, owned map[types.UID][]store.Object, depth int) []*treeNode {
	if depth > 3 {
		return nil
	}
	var kids []store.Object
	switch o := obj.(type) {
	case *corev1.Service:
		kids = tr.serviceChildren(o)
	case *corev1.Pod:
		for _, v := range o.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			for _, c := range tr.cached(claimsRes, o.Namespace) {
				if c.GetName() == v.PersistentVolumeClaim.ClaimName {
					kids = append(kids, c)
				}
			}
		}
	case *discoveryv1.EndpointSlice:
		for _, e := range o.Endpoints {
			if e.TargetRef == nil || e.TargetRef.Kind != "Pod" {
				continue
			}
			if p, ok := tr.podNamed(o.Namespace, e.TargetRef.Name); ok {
				kids = append(kids, p)
			}
		}
	default:
		kids = owned[obj.GetUID()]
	}
	out := make([]*treeNode, 0, len(kids))
	for _, k := range kids {
		if rs, ok := k.(*appsv1.ReplicaSet); ok && len(owned[rs.UID]) == 0 && rs.Spec.Replicas != nil && *rs.Spec.Replicas == 0 {
			continue // an old revision, scaled to nothing
		}
		n := nodeOf(k)
		tr.count(k, n)
		n.Children = tr.children(k, owned, depth+1)
		out = append(out, n)
	}
	sort.SliceStable(out, func(i, j int) bool { return less(out[i], out[j]) })
	return shorten(out, obj)
}

// maxChildren is how many objects the tree shows under one: a person reads
// the worst of a thousand pods, not all of them, and a page of a thousand
// rows paints slowly.
const maxChildren = 50

// shorten keeps the maxChildren worst of nodes (the worst health first),
// and says what the rest are, with a search for all of them when parent
// selects them by labels.
func shorten(nodes []*treeNode, parent store.Object) []*treeNode {
	if len(nodes) <= maxChildren {
		return nodes
	}
	sort.SliceStable(nodes, func(i, j int) bool {
		return health.Worse(health.Status(nodes[i].Health), health.Status(nodes[j].Health))
	})
	rest := nodes[maxChildren:]
	by := map[string]int{}
	for _, n := range rest {
		by[n.Health]++
	}
	var parts []string
	for h, c := range by {
		parts = append(parts, fmt.Sprintf("%d %s", c, h))
	}
	sort.Strings(parts)
	more := &treeNode{More: len(rest), Info: strings.Join(parts, ", "), Kind: rest[0].Kind}
	if sel := selectorOf(parent); sel != "" {
		more.Link = "/ui/search?" + url.Values{"q": {sel}}.Encode()
	}
	return append(nodes[:maxChildren:maxChildren], more)
}

// selectorOf is the label selector of the objects a workload controls.
func selectorOf(obj store.Object) string {
	var ls *metav1.LabelSelector
	switch o := obj.(type) {
	case *appsv1.ReplicaSet:
		ls = o.Spec.Selector
	case *appsv1.StatefulSet:
		ls = o.Spec.Selector
	case *appsv1.DaemonSet:
		ls = o.Spec.Selector
	case *corev1.Service:
		if len(o.Spec.Selector) > 0 {
			ls = &metav1.LabelSelector{MatchLabels: o.Spec.Selector}
		}
	}
	if ls == nil {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return ""
	}
	return sel.String()
}

// serviceChildren are a service's endpoint slices; the slices' children are
// the pods their endpoints point at.
func (tr *treeReader) serviceChildren(svc *corev1.Service) []store.Object {
	var out []store.Object
	for _, o := range tr.cached(slicesRes, svc.Namespace) {
		if o.GetLabels()[discoveryv1.LabelServiceName] == svc.Name {
			out = append(out, o)
		}
	}
	return out
}

func nodeOf(o store.Object) *treeNode {
	res, _ := store.ResourceOf(o)
	h := health.OfKind(res.GVK.GroupKind(), o)
	n := &treeNode{Kind: res.GVK.Kind, Namespace: o.GetNamespace(), Name: o.GetName(),
		Health: string(h.Status), Message: h.Message, Info: info(o)}
	if res.Plural != "" {
		n.Link = objectLink(res, n.Namespace, n.Name)
	}
	return n
}

func podLink(ns, name string) string {
	return "/ui/pods/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
}

func less(a, b *treeNode) bool {
	if a.Kind != b.Kind {
		return kindRank(a.Kind) < kindRank(b.Kind)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

var kindOrder = map[string]int{"Namespace": 0, "Deployment": 1, "StatefulSet": 2, "DaemonSet": 3, "CronJob": 4, "Job": 5,
	"ReplicaSet": 6, "Service": 7, "Ingress": 8, "EndpointSlice": 9, "Pod": 10, "PersistentVolumeClaim": 11}

func kindRank(k string) int {
	if r, ok := kindOrder[k]; ok {
		return r
	}
	return 100
}
