package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
)

// Event reasons of the service load balancer controller, as Kubernetes'
// service controller names them.
const (
	eventEnsuringLB     = "EnsuringLoadBalancer"
	eventEnsuredLB      = "EnsuredLoadBalancer"
	eventUpdatedLB      = "UpdatedLoadBalancer"
	eventDeletingLB     = "DeletingLoadBalancer"
	eventDeletedLB      = "DeletedLoadBalancer"
	eventSyncLBFailed   = "SyncLoadBalancerFailed"
	eventUpdateLBFailed = "UpdateLoadBalancerFailed"
)

// cloudLBController is Kubernetes' service controller: it gives Services of
// type LoadBalancer without a loadBalancerClass their load balancer from the
// cloud provider, points it at the nodes as they come and go, and deletes it
// when the service goes or changes type. It writes only its own part of the
// service, which it shares with gitsync (spec), the service IP controller
// (allocated fields, IPAllocated) and the endpoints controller: the
// service.kubernetes.io/load-balancer-cleanup finalizer, status.loadBalancer
// and the keelson.dev/LoadBalancer condition, compare-and-swap on a fresh
// copy.
type cloudLBController struct {
	*Controller
	st       *store.Store
	services cache.SharedIndexInformer
	nodes    cache.SharedIndexInformer
	rec      *Recorder
	provider string
	lb       cloud.LoadBalancer // nil: the provider makes none

	mu sync.Mutex
	// applied is what the provider was last asked for, by namespace/name:
	// a service that did not change is not ensured again, and one whose
	// nodes changed is updated.
	applied map[string]*lbApplied
}

type lbApplied struct {
	svc    *corev1.Service            // as ensured: its load balancer is deleted with it should it vanish
	nodes  string                     // nodesKey of the nodes given
	status *corev1.LoadBalancerStatus // nil: unknown after an update, ask the provider
}

func newCloudLBController(st *store.Store, inf *Informers, rec *Recorder, p cloud.Interface, queue QueueOptions, log *slog.Logger) *cloudLBController {
	c := &cloudLBController{st: st, rec: rec, provider: p.Name(), applied: map[string]*lbApplied{},
		services: inf.For(store.MustResource("services")), nodes: inf.For(store.MustResource("nodes"))}
	if lb, ok := p.LoadBalancer(); ok {
		c.lb = lb
	}
	c.Controller = NewController("service-lb", c, queue, log)
	c.services.AddEventHandler(c.Handler(SelfKeys))
	c.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.nodesChanged() },
		UpdateFunc: func(old, cur any) {
			if lbNodeKey(old) != lbNodeKey(cur) {
				c.nodesChanged()
			}
		},
		DeleteFunc: func(any) { c.nodesChanged() },
	})
	return c
}

// nodesChanged queues every service with a load balancer: each compares the
// nodes it would get with those it has, as Kubernetes' nodeSyncLoop does.
func (c *cloudLBController) nodesChanged() {
	if c.lb == nil {
		return
	}
	for _, s := range cachedList[*corev1.Service](c.services) {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			c.Enqueue(s.Namespace + "/" + s.Name)
		}
	}
}

// Reconcile ensures, updates or deletes one service's load balancer.
func (c *cloudLBController) Reconcile(ctx context.Context, key string) (Result, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return Result{}, Terminal(fmt.Errorf("service key %q: %w", key, err))
	}
	svc, ok := GetCached[*corev1.Service](c.services, ns, name)
	switch {
	case !ok:
		return Result{}, c.vanished(ctx, key)
	case !wantsLoadBalancer(svc):
		return Result{}, c.cleanup(ctx, svc)
	case c.lb == nil:
		return Result{}, c.noProvider(ctx, svc)
	}
	return Result{}, c.ensure(ctx, svc)
}

// wantsLoadBalancer: a LoadBalancer service not being deleted whose
// load balancer is the cloud provider's (no loadBalancerClass).
func wantsLoadBalancer(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && svc.DeletionTimestamp == nil
}

// ensure makes or updates the load balancer and writes its status. The
// finalizer is written first, so that no load balancer is ever made for a
// service that could go without this controller deleting it.
func (c *cloudLBController) ensure(ctx context.Context, svc *corev1.Service) error {
	if !slices.Contains(svc.Finalizers, cloud.LoadBalancerCleanupFinalizer) {
		s, err := c.write(ctx, svc, func(s *corev1.Service) bool {
			s.Finalizers = append(s.Finalizers, cloud.LoadBalancerCleanupFinalizer)
			return true
		})
		if err != nil || s == nil {
			return err
		}
		svc = s
	}
	if !lbAllocated(svc) {
		return nil // the service IP controller's write queues it again
	}
	key := svc.Namespace + "/" + svc.Name
	nodes := c.lbNodes(svc)
	a := c.get(key)
	switch {
	case a == nil || lbChanged(a.svc, svc):
		c.rec.Eventf(svc, corev1.EventTypeNormal, eventEnsuringLB, "Ensuring load balancer")
		st, err := c.lb.EnsureLoadBalancer(ctx, svc, nodes)
		if err != nil {
			return c.failed(ctx, svc, eventSyncLBFailed, "Error syncing load balancer", err)
		}
		if st == nil {
			st = &corev1.LoadBalancerStatus{}
		}
		c.rec.Eventf(svc, corev1.EventTypeNormal, eventEnsuredLB, "Ensured load balancer")
		a = &lbApplied{svc: svc, nodes: nodesKey(nodes), status: st}
	case a.nodes != nodesKey(nodes):
		if err := c.lb.UpdateLoadBalancer(ctx, svc, nodes); err != nil {
			return c.failed(ctx, svc, eventUpdateLBFailed, "Error updating load balancer with new hosts", err)
		}
		c.rec.Eventf(svc, corev1.EventTypeNormal, eventUpdatedLB, "Updated load balancer with new hosts")
		a = &lbApplied{svc: svc, nodes: nodesKey(nodes)}
	}
	c.set(key, a)
	if a.status == nil {
		st, exists, err := c.lb.GetLoadBalancer(ctx, svc)
		if err == nil && !exists {
			c.forget(key) // gone behind the controller's back: ensured again on the retry
			err = fmt.Errorf("the provider has no load balancer for the service after updating it")
		}
		if err != nil {
			return c.failed(ctx, svc, eventSyncLBFailed, "Error syncing load balancer", err)
		}
		if st == nil {
			st = &corev1.LoadBalancerStatus{}
		}
		a = &lbApplied{svc: a.svc, nodes: a.nodes, status: st}
		c.set(key, a)
	}
	return c.ready(ctx, svc, a.status)
}

// lbAllocated reports whether the service has the cluster IP and node ports
// a provider's load balancer may point at.
func lbAllocated(svc *corev1.Service) bool {
	if svc.Spec.ClusterIP == "" {
		return false
	}
	if servicenet.AllocatesNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			if p.NodePort == 0 {
				return false
			}
		}
	}
	return true
}

// lbChanged reports whether the provider must be asked to ensure the
// service again: another service of the same name, a changed spec (the
// store bumps generation), or changed annotations (where providers read
// their options).
func lbChanged(old, cur *corev1.Service) bool {
	return old.UID != cur.UID || old.Generation != cur.Generation || !maps.Equal(old.Annotations, cur.Annotations)
}

// lbNodes are the nodes a service's load balancer sends traffic to: those
// not labelled node.kubernetes.io/exclude-from-external-load-balancers nor
// being deleted, and, unless the service's externalTrafficPolicy is Local
// (the agents then send traffic only to local endpoints), Ready and
// schedulable. Sorted by name.
func (c *cloudLBController) lbNodes(svc *corev1.Service) []*corev1.Node {
	local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	var out []*corev1.Node
	for _, n := range cachedList[*corev1.Node](c.nodes) {
		if _, excluded := n.Labels[corev1.LabelNodeExcludeBalancers]; excluded || n.DeletionTimestamp != nil {
			continue
		}
		if !local && (nodeReadyStatus(n) != corev1.ConditionTrue || n.Spec.Unschedulable) {
			continue
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// nodesKey is what of a set of nodes a load balancer depends on: their
// names and addresses.
func nodesKey(nodes []*corev1.Node) string {
	var b strings.Builder
	for _, n := range nodes {
		b.WriteString(n.Name)
		for _, a := range n.Status.Addresses {
			fmt.Fprintf(&b, ",%s=%s", a.Type, a.Address)
		}
		b.WriteByte(';')
	}
	return b.String()
}

// lbNodeKey is what of one node decides whether and how load balancers use
// it; a change in it queues every LoadBalancer service.
func lbNodeKey(obj any) string {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return ""
	}
	_, excluded := n.Labels[corev1.LabelNodeExcludeBalancers]
	return fmt.Sprintf("%s %s %v %v %v %s", n.Name, nodeReadyStatus(n), n.Spec.Unschedulable, excluded,
		n.DeletionTimestamp != nil, nodesKey([]*corev1.Node{n}))
}

func (c *cloudLBController) get(key string) *lbApplied {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied[key]
}

func (c *cloudLBController) set(key string, a *lbApplied) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applied[key] = a
}

func (c *cloudLBController) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.applied, key)
}
