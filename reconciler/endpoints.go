package reconciler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// EndpointsController keeps the core/v1 Endpoints object of every Service
// with a selector, for clients that predate EndpointSlices: ready addresses
// and notReadyAddresses grouped by port set, at most MaxEndpointsAddresses
// (then truncated and annotated), labelled so that it is never mirrored
// back into slices. An Endpoints object from Git (label keelson.dev/source)
// or the control plane's is never touched.
type EndpointsController struct {
	*Controller
	st        *store.Store
	res       store.Resource
	services  cache.SharedIndexInformer
	pods      cache.SharedIndexInformer
	endpoints cache.SharedIndexInformer
	max       int
}

// NewEndpointsController returns the controller, registered on the
// informers.
func NewEndpointsController(st *store.Store, inf *Informers, opts EndpointsOptions, qopts QueueOptions, log *slog.Logger) (*EndpointsController, error) {
	opts = opts.withDefaults()
	res := store.MustResource("endpoints")
	c := &EndpointsController{
		st: st, res: res, services: inf.For(store.MustResource("services")), pods: inf.For(store.MustResource("pods")),
		endpoints: inf.For(res), max: opts.MaxEndpointsAddresses,
	}
	c.Controller = NewController("endpoints", c, qopts, log)
	if err := addServiceSelectorIndex(c.services); err != nil {
		return nil, err
	}
	for inf, h := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		c.services:  serviceHandler(c.Enqueue),
		c.pods:      podServiceHandler(c.services, c.Enqueue),
		c.endpoints: c.Handler(SelfKeys),
	} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("endpoints controller: %w", err)
		}
	}
	return c, nil
}

// notOurs reports whether an Endpoints object belongs to someone else: Git
// or the control plane.
func notOurs(ep *corev1.Endpoints) bool {
	_, git := ep.Labels[keelsonv1alpha1.LabelSource]
	_, cp := ep.Labels[keelsonv1alpha1.LabelControlPlane]
	return git || cp
}

// Reconcile brings one service's Endpoints object up to date.
func (c *EndpointsController) Reconcile(ctx context.Context, key string) (Result, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return Result{}, Terminal(err)
	}
	svc, ok := GetCached[*corev1.Service](c.services, ns, name)
	if !ok || controlPlaneService(svc) || svc.DeletionTimestamp != nil {
		return Result{}, nil // a deleted service's Endpoints go with it (owner reference)
	}
	cur, exists := GetCached[*corev1.Endpoints](c.endpoints, ns, name)
	if exists && notOurs(cur) {
		return Result{}, nil
	}
	if !selectsPods(svc) {
		if ref := controllerRefOf(cur, exists); ref != nil && ref.UID == svc.UID {
			rv := cur.ResourceVersion
			err := c.st.Delete(ctx, c.res, ns, name, &metav1.Preconditions{ResourceVersion: &rv})
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return Result{}, fmt.Errorf("delete Endpoints %s of a service without selector: %w", key, err)
			}
		}
		return Result{}, nil
	}
	want := endpointsFor(svc, selectedPods(c.pods, svc), c.max)
	if exists && sameEndpoints(cur, want) {
		return Result{}, nil
	}
	if !exists {
		err = c.st.Create(ctx, want)
	} else {
		next := cur.DeepCopy()
		next.Labels, next.Annotations = mergeOwn(next.Labels, want.Labels, labelsOfEndpoints), mergeOwn(next.Annotations, want.Annotations, annotationsOfEndpoints)
		next.OwnerReferences, next.Subsets = want.OwnerReferences, want.Subsets
		err = c.st.Update(ctx, next)
	}
	if err != nil {
		return Result{}, fmt.Errorf("write Endpoints %s: %w", key, err)
	}
	return Result{}, nil
}

func controllerRefOf(ep *corev1.Endpoints, exists bool) *metav1.OwnerReference {
	if !exists {
		return nil
	}
	return metav1.GetControllerOfNoCopy(ep)
}

// The labels and annotations of an Endpoints object this controller sets;
// others' are kept.
var (
	labelsOfEndpoints      = []string{discoveryv1.LabelSkipMirror, corev1.IsHeadlessService}
	annotationsOfEndpoints = []string{corev1.EndpointsOverCapacity}
)

// mergeOwn returns have with the keys in own set as in want (or removed).
func mergeOwn(have, want map[string]string, own []string) map[string]string {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	for _, k := range own {
		if v, ok := want[k]; ok {
			out[k] = v
		} else {
			delete(out, k)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func sameEndpoints(cur, want *corev1.Endpoints) bool {
	for _, k := range labelsOfEndpoints {
		if a, b := cur.Labels[k], want.Labels[k]; a != b || hasKey(cur.Labels, k) != hasKey(want.Labels, k) {
			return false
		}
	}
	for _, k := range annotationsOfEndpoints {
		if a, b := cur.Annotations[k], want.Annotations[k]; a != b || hasKey(cur.Annotations, k) != hasKey(want.Annotations, k) {
			return false
		}
	}
	return equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences) &&
		equality.Semantic.DeepEqual(cur.Subsets, want.Subsets)
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// endpointsFor is the Endpoints object a service's selected pods give.
// Terminating pods are left out, unless the service publishes not-ready
// addresses, as Kubernetes' Endpoints controller does.
func endpointsFor(svc *corev1.Service, pods []*corev1.Pod, limit int) *corev1.Endpoints {
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{
		Namespace: svc.Namespace, Name: svc.Name,
		Labels:          map[string]string{discoveryv1.LabelSkipMirror: "true"},
		OwnerReferences: []metav1.OwnerReference{ownerRef(svc, serviceGVK)},
	}}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		ep.Labels[corev1.IsHeadlessService] = ""
	}
	publish := svc.Spec.PublishNotReadyAddresses
	subsets := map[string]*corev1.EndpointSubset{}
	for _, p := range pods {
		ip := podIPv4(p)
		if podFinished(p) || ip == "" || (p.DeletionTimestamp != nil && !publish) {
			continue
		}
		ports, _ := resolvePorts(svc, p)
		if len(svc.Spec.Ports) > 0 && len(ports) == 0 {
			continue
		}
		pk := portsKey(ports)
		ss := subsets[pk]
		if ss == nil {
			ss = &corev1.EndpointSubset{Ports: corePorts(ports)}
			subsets[pk] = ss
		}
		addr := corev1.EndpointAddress{IP: ip, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
		if p.Spec.NodeName != "" {
			addr.NodeName = ptr.To(p.Spec.NodeName)
		}
		if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name {
			addr.Hostname = p.Spec.Hostname
		}
		if publish || podReady(p) {
			ss.Addresses = append(ss.Addresses, addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, addr)
		}
	}
	for _, pk := range slices.Sorted(maps.Keys(subsets)) {
		ss := subsets[pk]
		sortAddresses(ss.Addresses)
		sortAddresses(ss.NotReadyAddresses)
		ep.Subsets = append(ep.Subsets, *ss)
	}
	var truncated bool
	if ep.Subsets, truncated = truncateSubsets(ep.Subsets, limit); truncated {
		ep.Annotations = map[string]string{corev1.EndpointsOverCapacity: "truncated"}
	}
	return ep
}

func corePorts(ports []discoveryv1.EndpointPort) []corev1.EndpointPort {
	out := make([]corev1.EndpointPort, len(ports))
	for i, p := range ports {
		out[i] = corev1.EndpointPort{Name: ptr.Deref(p.Name, ""), Port: ptr.Deref(p.Port, 0), Protocol: ptr.Deref(p.Protocol, corev1.ProtocolTCP), AppProtocol: p.AppProtocol}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func sortAddresses(a []corev1.EndpointAddress) {
	slices.SortFunc(a, func(x, y corev1.EndpointAddress) int {
		if c := cmp.Compare(x.IP, y.IP); c != 0 {
			return c
		}
		return cmp.Compare(x.TargetRef.Name, y.TargetRef.Name)
	})
}

// truncateSubsets keeps at most limit addresses and reports whether any
// was cut. Ready addresses go before not-ready ones, and the kind that is cut
// is cut in each subset by its share of the whole, as Kubernetes does, so
// that no port set loses every address to the subsets before it.
func truncateSubsets(subsets []corev1.EndpointSubset, limit int) ([]corev1.EndpointSubset, bool) {
	ready, notReady := 0, 0
	for _, ss := range subsets {
		ready += len(ss.Addresses)
		notReady += len(ss.NotReadyAddresses)
	}
	if ready+notReady <= limit {
		return subsets, false
	}
	readyOf := func(ss *corev1.EndpointSubset) *[]corev1.EndpointAddress { return &ss.Addresses }
	notReadyOf := func(ss *corev1.EndpointSubset) *[]corev1.EndpointAddress { return &ss.NotReadyAddresses }
	if ready > limit {
		shareOut(subsets, readyOf, ready, limit)
		shareOut(subsets, notReadyOf, notReady, 0)
	} else {
		shareOut(subsets, notReadyOf, notReady, limit-ready)
	}
	return slices.DeleteFunc(subsets, func(ss corev1.EndpointSubset) bool {
		return len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0
	}), true
}

// shareOut cuts the address lists that list picks from the subsets, total
// addresses in all, to budget: each keeps its proportion of the budget,
// rounded up while the budget lasts.
func shareOut(subsets []corev1.EndpointSubset, list func(*corev1.EndpointSubset) *[]corev1.EndpointAddress, total, budget int) {
	left := budget
	for i := range subsets {
		l := list(&subsets[i])
		n := 0
		if total > 0 {
			n = min(len(*l), left, (len(*l)*budget+total-1)/total)
		}
		left -= n
		if n == 0 {
			*l = nil
			continue
		}
		*l = (*l)[:n:n]
	}
}
