package reconciler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// NodePolicyController applies NodePolicies, which come from Git, to Nodes:
// every node gets the labels, taints and cordon of the policies that match
// it (by name, or by a selector over the labels the node has of its own),
// and loses what they set once it stops matching or a policy goes. What
// policies set is recorded on the node (AnnotationNodePolicyApplied), so
// that only that is ever taken back: the agent's labels and the node
// lifecycle controller's taints stay. Where two policies set one key to
// different values on a node, the first by name wins and both report
// Ready=False, reason Conflict.
//
// A policy with drain also evicts the pods of its nodes once they are
// cordoned, each only while its PodDisruptionBudget allows
// (nodepolicy_drain.go).
//
// It runs three queues: nodes (write the node), drains (evict a draining
// node's pods) and policies (write the policy's status: matched nodes,
// Ready, Drained).
type NodePolicyController struct {
	nodeQueue   *Controller
	statusQueue *Controller
	drainQueue  *Controller
	st          *store.Store
	nodes       cache.SharedIndexInformer
	policies    cache.SharedIndexInformer
	pods        cache.SharedIndexInformer
	budgets     cache.SharedIndexInformer
	rec         *Recorder
	drained     drains
}

// NewNodePolicyController returns the controller, registered on the
// informers.
func NewNodePolicyController(st *store.Store, inf *Informers, rec *Recorder, queue QueueOptions, log *slog.Logger) *NodePolicyController {
	c := &NodePolicyController{st: st, rec: rec,
		nodes: inf.For(store.MustResource("nodes")), policies: inf.For(store.MustResource("nodepolicies.keelson.dev")),
		pods: inf.For(store.MustResource("pods")), budgets: inf.For(store.MustResource("poddisruptionbudgets.policy"))}
	c.nodeQueue = NewController("node-policy", ReconcileFunc(c.reconcileNode), queue, log)
	c.statusQueue = NewController("node-policy-status", ReconcileFunc(c.reconcileStatus), queue, log)
	c.drainQueue = NewController("node-drain", ReconcileFunc(c.reconcileDrain), queue, log)
	c.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			c.nodeQueue.EnqueueObject(obj)
			c.drainQueue.EnqueueObject(obj)
			c.enqueueAll(c.policies, c.statusQueue)
		},
		UpdateFunc: func(old, cur any) {
			o, n := old.(*corev1.Node), cur.(*corev1.Node)
			if o.ResourceVersion == n.ResourceVersion || nodeSettingsChanged(o, n) { // a resync, or a change that matters
				c.nodeQueue.EnqueueObject(cur)
				c.drainQueue.EnqueueObject(cur)
				c.enqueueAll(c.policies, c.statusQueue)
			}
		},
		DeleteFunc: func(obj any) {
			c.drainQueue.EnqueueObject(obj)
			c.enqueueAll(c.policies, c.statusQueue)
		},
	})
	// A policy's change can settle or start a conflict with the others:
	// every policy's status is looked at again, and every node.
	changed := func() {
		c.enqueueAll(c.nodes, c.nodeQueue)
		c.enqueueAll(c.nodes, c.drainQueue)
		c.enqueueAll(c.policies, c.statusQueue)
	}
	c.policies.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { changed() },
		UpdateFunc: func(old, cur any) {
			o, n := old.(*keelsonv1alpha1.NodePolicy), cur.(*keelsonv1alpha1.NodePolicy)
			if o.Generation != n.Generation || o.ResourceVersion == n.ResourceVersion ||
				!equality.Semantic.DeepEqual(o.Spec, n.Spec) || (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) {
				changed()
			}
		},
		DeleteFunc: func(any) { changed() },
	})
	return c
}

// nodeSettingsChanged reports whether an update touched what policies match
// on or set: a heartbeat's status write does not.
func nodeSettingsChanged(o, n *corev1.Node) bool {
	return !equality.Semantic.DeepEqual(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Annotations, n.Annotations) ||
		!equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) || o.Spec.Unschedulable != n.Spec.Unschedulable
}

func (c *NodePolicyController) enqueueAll(inf cache.SharedIndexInformer, q *Controller) {
	for _, key := range inf.GetStore().ListKeys() {
		q.Enqueue(key)
	}
}

// Run runs the three queues until ctx ends.
func (c *NodePolicyController) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.statusQueue.Run(ctx) })
	wg.Go(func() { c.drainQueue.Run(ctx) })
	c.nodeQueue.Run(ctx)
	wg.Wait()
}

// sortedPolicies returns the cached policies by name, the order that
// settles conflicts, ready to match nodes.
func (c *NodePolicyController) sortedPolicies() []policyMatcher {
	var out []*keelsonv1alpha1.NodePolicy
	for _, o := range c.policies.GetStore().List() {
		if p, ok := o.(*keelsonv1alpha1.NodePolicy); ok {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *keelsonv1alpha1.NodePolicy) int { return cmp.Compare(a.Name, b.Name) })
	return matchers(out)
}

// reconcileNode writes to one node what the policies matching it set, and
// takes back what they set before and no longer do. The write is a
// compare-and-swap on the cached version: a conflict with the agent or the
// node lifecycle controller retries on the newer node.
func (c *NodePolicyController) reconcileNode(ctx context.Context, name string) (Result, error) {
	n, ok := GetCached[*corev1.Node](c.nodes, "", name)
	if !ok {
		return Result{}, nil
	}
	rec, err := readApplied(n)
	if err != nil {
		// Without a record nothing can be taken back safely; what the
		// policies want is still set, and recorded afresh.
		c.rec.Eventf(n, corev1.EventTypeWarning, "NodePolicyRecordInvalid", "%v: starting a new record", err)
	}
	w := wantsOf(n, c.sortedPolicies(), rec)
	out, changed := applyWants(n, w, rec)
	if !changed {
		return Result{}, nil
	}
	if err := c.st.Update(ctx, out); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Result{}, nil // deleted meanwhile
		}
		return Result{}, fmt.Errorf("node %s: apply node policies: %w", name, err)
	}
	switch {
	case out.Spec.Unschedulable && !n.Spec.Unschedulable:
		c.rec.Eventf(n, corev1.EventTypeNormal, "NodeNotSchedulable", "Node %s cordoned by NodePolicy %s", name, w.cordonBy)
	case !out.Spec.Unschedulable && n.Spec.Unschedulable:
		c.rec.Eventf(n, corev1.EventTypeNormal, "NodeSchedulable", "Node %s uncordoned: no NodePolicy cordons it any more", name)
	}
	return Result{}, nil
}
