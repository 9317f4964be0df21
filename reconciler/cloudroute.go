package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
)

// routesKey is the route controller's only key: it looks at every route at
// once.
const routesKey = "routes"

// eventFailedToCreateRoute is the route controller's, on the node, as
// Kubernetes names it.
const eventFailedToCreateRoute = "FailedToCreateRoute"

// cloudRouteController is Kubernetes' route controller: every node with a
// pod CIDR has a route to it from the provider, and the routes of nodes
// that are gone, or of CIDRs a node no longer has, are deleted. It lists the
// provider's routes again every resync, and retries failures with back-off.
type cloudRouteController struct {
	*Controller
	nodes  cache.SharedIndexInformer
	rec    *Recorder
	routes cloud.Routes
	// cluster holds the pod CIDRs: routes outside it are not keelson's and
	// are never deleted. Invalid: every route listed is keelson's.
	cluster netip.Prefix
	resync  time.Duration
}

func newCloudRouteController(inf *Informers, rec *Recorder, routes cloud.Routes, cluster netip.Prefix, resync time.Duration, queue QueueOptions, log *slog.Logger) *cloudRouteController {
	c := &cloudRouteController{nodes: inf.For(store.MustResource("nodes")), rec: rec, routes: routes, cluster: cluster, resync: resync}
	c.Controller = NewController("cloud-route", c, queue, log)
	c.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.Enqueue(routesKey) },
		UpdateFunc: func(old, cur any) {
			if o, ok := old.(*corev1.Node); ok {
				if n, ok := cur.(*corev1.Node); ok && slices.Equal(podCIDRs(o), podCIDRs(n)) {
					return
				}
			}
			c.Enqueue(routesKey)
		},
		DeleteFunc: func(any) { c.Enqueue(routesKey) },
	})
	return c
}

// Run looks at the routes once at start, even with no node, then whenever
// a node's pod CIDRs change and every resync.
func (c *cloudRouteController) Run(ctx context.Context) {
	c.Enqueue(routesKey)
	c.Controller.Run(ctx)
}

func podCIDRs(n *corev1.Node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

// Reconcile makes the missing routes and deletes those no node wants.
func (c *cloudRouteController) Reconcile(ctx context.Context, _ string) (Result, error) {
	listed, err := c.routes.ListRoutes(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("list routes: %w", err)
	}
	want := map[string]*corev1.Node{} // by "node cidr"
	for _, n := range cachedList[*corev1.Node](c.nodes) {
		for _, cidr := range podCIDRs(n) {
			want[n.Name+" "+cidr] = n
		}
	}
	have := map[string]bool{}
	var errs []error
	for _, r := range listed {
		k := r.TargetNode + " " + r.DestinationCIDR
		if want[k] != nil {
			have[k] = true
			continue
		}
		if !c.ours(r) {
			continue
		}
		if err := c.routes.DeleteRoute(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("delete route %s (%s to node %s): %w", r.Name, r.DestinationCIDR, r.TargetNode, err))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if have[k] {
			continue
		}
		n := want[k]
		_, cidr, _ := strings.Cut(k, " ")
		if err := c.routes.CreateRoute(ctx, n.Name, cloud.Route{TargetNode: n.Name, DestinationCIDR: cidr}); err != nil {
			c.rec.Eventf(n, corev1.EventTypeWarning, eventFailedToCreateRoute, "Could not create route %s for node %s: %v", cidr, n.Name, err)
			errs = append(errs, fmt.Errorf("create route %s to node %s: %w", cidr, n.Name, err))
		}
	}
	if len(errs) > 0 {
		return Result{}, errors.Join(errs...)
	}
	return Result{RequeueAfter: c.resync}, nil
}

// ours reports whether a route listed is keelson's to delete: one to a pod
// CIDR within the cluster CIDR.
func (c *cloudRouteController) ours(r cloud.Route) bool {
	if !c.cluster.IsValid() {
		return true
	}
	p, err := netip.ParsePrefix(r.DestinationCIDR)
	return err == nil && p.Bits() >= c.cluster.Bits() && c.cluster.Contains(p.Addr())
}
