package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/store"
)

// IngressStatusController fills the status of the Ingresses keelson serves
// (ingressclass.Served) with where they are reached: the addresses of the
// Ready nodes whose agent runs the ingress proxy (their Node carries
// ingressclass.AnnotationNodeProxy), an ExternalIP before an InternalIP,
// as ingress controllers publish the addresses of the nodes they run on.
// Ingresses of other classes are left alone: their controller writes them.
type IngressStatusController struct {
	*Controller
	st        *store.Store
	ingresses cache.SharedIndexInformer
	classes   cache.SharedIndexInformer
	nodes     cache.SharedIndexInformer
}

// NewIngressStatusController returns the controller, registered on the
// informers.
func NewIngressStatusController(st *store.Store, inf *Informers, opts QueueOptions, log *slog.Logger) *IngressStatusController {
	c := &IngressStatusController{st: st,
		ingresses: inf.For(store.MustResource("ingresses.networking.k8s.io")),
		classes:   inf.For(store.MustResource("ingressclasses.networking.k8s.io")),
		nodes:     inf.For(store.MustResource("nodes"))}
	c.Controller = NewController("ingress-status", c, opts, log)
	c.ingresses.AddEventHandler(c.Handler(SelfKeys))
	// A node joining, leaving or changing readiness, and a class changing
	// controller, change every Ingress's status.
	all := func(any) []string {
		var keys []string
		for _, o := range c.ingresses.GetIndexer().List() {
			if k, err := cache.MetaNamespaceKeyFunc(o); err == nil {
				keys = append(keys, k)
			}
		}
		return keys
	}
	enqueueAll := func(obj any) {
		for _, k := range all(obj) {
			c.Enqueue(k)
		}
	}
	// Only what the status is made of: readiness, the annotation, the
	// addresses (a heartbeat's status post changes none of them).
	c.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueAll, DeleteFunc: enqueueAll,
		UpdateFunc: func(old, cur any) {
			if ingressNodeKey(old) != ingressNodeKey(cur) {
				enqueueAll(cur)
			}
		},
	})
	c.classes.AddEventHandler(c.Handler(all))
	return c
}

// Reconcile writes one Ingress's status.loadBalancer when it changed.
func (c *IngressStatusController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.ingresses.GetIndexer().GetByKey(key)
	if !ok {
		return Result{}, nil
	}
	ing := obj.(*networkingv1.Ingress)
	if !ingressclass.Served(ing, ingressclass.FromStore(c.classes.GetStore())) {
		return Result{}, nil
	}
	want := c.addresses()
	if equality.Semantic.DeepEqual(want, ing.Status.LoadBalancer.Ingress) {
		return Result{}, nil
	}
	cp := ing.DeepCopy()
	cp.Status.LoadBalancer.Ingress = want
	if err := ignoreNotFound(c.st.UpdateStatus(ctx, cp)); err != nil {
		return Result{}, fmt.Errorf("ingress %s: status: %w", key, err)
	}
	return Result{}, nil
}

// addresses are the ingress proxies' addresses, sorted, each once; nil
// when no Ready node runs one.
func (c *IngressStatusController) addresses() []networkingv1.IngressLoadBalancerIngress {
	var ips []string
	for _, o := range c.nodes.GetIndexer().List() {
		n, ok := o.(*corev1.Node)
		if !ok || n.DeletionTimestamp != nil || nodeReadyStatus(n) != corev1.ConditionTrue {
			continue
		}
		if _, runs := n.Annotations[ingressclass.AnnotationNodeProxy]; !runs {
			continue
		}
		if ip := ingressProxyAddress(n, corev1.NodeExternalIP, corev1.NodeInternalIP); ip != "" {
			ips = append(ips, ip)
		}
	}
	slices.Sort(ips)
	ips = slices.Compact(ips)
	var out []networkingv1.IngressLoadBalancerIngress
	for _, ip := range ips {
		out = append(out, networkingv1.IngressLoadBalancerIngress{IP: ip})
	}
	return out
}

// ingressNodeKey is what of a node the Ingresses' status depends on.
func ingressNodeKey(obj any) string {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return ""
	}
	_, runs := n.Annotations[ingressclass.AnnotationNodeProxy]
	return fmt.Sprintf("%s %v %v %s", nodeReadyStatus(n), runs, n.DeletionTimestamp != nil,
		ingressProxyAddress(n, corev1.NodeExternalIP, corev1.NodeInternalIP))
}

// ingressProxyAddress is the node's first address of the first of types it has.
func ingressProxyAddress(n *corev1.Node, types ...corev1.NodeAddressType) string {
	for _, t := range types {
		for _, a := range n.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}
