package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

// nodeLeaseNamespace holds the agents' heartbeat leases, as in Kubernetes.
const nodeLeaseNamespace = "kube-node-lease"

// NodeLifecycleOptions tune node health, eviction and pod CIDRs.
type NodeLifecycleOptions struct {
	// Disabled turns the controller off (benchmarks with nodes that never
	// heartbeat).
	Disabled bool
	// GracePeriod is how long a node may go without renewing its lease before
	// it is Ready=Unknown and tainted unreachable. Default 40s
	// (--node-monitor-grace-period).
	GracePeriod time.Duration
	// TolerationSeconds is how long pods without their own toleration of the
	// unreachable taint stay on such a node. Default 300s.
	TolerationSeconds int64
	// EvictionQPS and EvictionBurst bound how fast pods are evicted, so that a
	// network blip does not empty the cluster. Defaults 10/s and 20.
	EvictionQPS   float64
	EvictionBurst int
	// ClusterCIDR is split into NodeMaskSize subnets, one per node without a
	// spec.podCIDR. Defaults 10.42.0.0/16 and 24; ClusterCIDR "-" turns
	// allocation off.
	ClusterCIDR  string
	NodeMaskSize int
}

func (o NodeLifecycleOptions) withDefaults() NodeLifecycleOptions {
	if o.GracePeriod <= 0 {
		o.GracePeriod = 40 * time.Second
	}
	if o.TolerationSeconds <= 0 {
		o.TolerationSeconds = 300
	}
	if o.EvictionQPS <= 0 {
		o.EvictionQPS = 10
	}
	if o.EvictionBurst <= 0 {
		o.EvictionBurst = 20
	}
	if o.ClusterCIDR == "" {
		o.ClusterCIDR = "10.42.0.0/16"
	}
	if o.NodeMaskSize <= 0 {
		o.NodeMaskSize = 24
	}
	return o
}

var unreachableTaint = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}

// NodeLifecycleController watches the nodes' heartbeats: a node whose lease
// was not renewed for GracePeriod becomes Ready=Unknown and gets the taint
// node.kubernetes.io/unreachable:NoExecute; its pods are deleted, at a bounded
// rate, once their toleration of that taint runs out, so their controllers
// recreate them elsewhere; a node that is back and Ready loses the taint. It
// also gives every node without one a spec.podCIDR from the cluster CIDR.
type NodeLifecycleController struct {
	*Controller
	st      *store.Store
	nodes   cache.SharedIndexInformer
	leases  cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	rec     *Recorder
	opts    NodeLifecycleOptions
	cidrs   *cidrAllocator
	limiter *rate.Limiter
	now     func() time.Time
	log     *slog.Logger
	// gone records when deleted nodes were seen deleted; their pods are
	// deleted a grace period later, unless the node comes back.
	goneMu sync.Mutex
	gone   map[string]time.Time
}

// NewNodeLifecycleController returns the controller, registered on the
// informers. An invalid ClusterCIDR turns allocation off, with a log line.
func NewNodeLifecycleController(st *store.Store, inf *Informers, rec *Recorder, opts NodeLifecycleOptions, queue QueueOptions, log *slog.Logger) *NodeLifecycleController {
	opts = opts.withDefaults()
	c := &NodeLifecycleController{
		st: st, nodes: inf.For(store.MustResource("nodes")), leases: inf.For(store.MustResource("leases.coordination.k8s.io")),
		pods: inf.For(store.MustResource("pods")), rec: rec, opts: opts, now: time.Now, log: log,
		limiter: rate.NewLimiter(rate.Limit(opts.EvictionQPS), opts.EvictionBurst),
		gone:    map[string]time.Time{},
	}
	if opts.ClusterCIDR != "-" {
		a, err := newCIDRAllocator(opts.ClusterCIDR, opts.NodeMaskSize)
		if err != nil {
			log.Error("node CIDR allocation off", "err", err)
		}
		c.cidrs = a
	}
	c.Controller = NewController("node-lifecycle", c, queue, log)
	c.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.observe(obj.(*corev1.Node)) },
		UpdateFunc: func(_, cur any) { c.observe(cur.(*corev1.Node)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			n, ok := obj.(*corev1.Node)
			if !ok {
				return
			}
			if c.cidrs != nil {
				c.cidrs.release(n.Name)
			}
			c.goneMu.Lock()
			c.gone[n.Name] = c.now()
			c.goneMu.Unlock()
			c.Enqueue(n.Name)
		},
	})
	c.leases.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.leaseChanged(obj) },
		UpdateFunc: func(_, cur any) { c.leaseChanged(cur) },
	})
	return c
}

func (c *NodeLifecycleController) observe(n *corev1.Node) {
	if c.cidrs != nil && n.Spec.PodCIDR != "" {
		if other := c.cidrs.occupy(n.Name, n.Spec.PodCIDR); other != "" {
			c.rec.Eventf(n, corev1.EventTypeWarning, "CIDRConflict",
				"Node %s has pod CIDR %s, already node %s's: pods of the two nodes will get the same addresses; leave the agent's --pod-cidr unset so that each node is given its own", n.Name, n.Spec.PodCIDR, other)
		}
	}
	c.Enqueue(n.Name)
}

func (c *NodeLifecycleController) leaseChanged(obj any) {
	if l, ok := obj.(*coordinationv1.Lease); ok && l.Namespace == nodeLeaseNamespace {
		c.Enqueue(l.Name)
	}
}

// Reconcile checks one node's pod CIDR, heartbeat, taint and pods.
func (c *NodeLifecycleController) Reconcile(ctx context.Context, name string) (Result, error) {
	n, ok := GetCached[*corev1.Node](c.nodes, "", name)
	c.goneMu.Lock()
	since, deleted := c.gone[name]
	if ok {
		delete(c.gone, name)
	}
	c.goneMu.Unlock()
	if !ok {
		if !deleted {
			return Result{}, nil
		}
		return c.deleteOrphans(ctx, name, since)
	}
	if err := c.assignCIDR(ctx, n); err != nil {
		return Result{}, err
	}
	now := c.now()
	last := c.lastHeartbeat(n)
	if expiry := last.Add(c.opts.GracePeriod); now.Before(expiry) {
		if nodeReadyStatus(n) == corev1.ConditionTrue && hasTaint(n, unreachableTaint) {
			if err := c.setTaint(ctx, n, false); err != nil {
				return Result{}, err
			}
			c.rec.Eventf(n, corev1.EventTypeNormal, "NodeReachable", "Node %s is posting status again: taint %s removed", name, unreachableTaint.Key)
		}
		return Result{RequeueAfter: expiry.Sub(now) + 100*time.Millisecond}, nil
	}
	if nodeReadyStatus(n) != corev1.ConditionUnknown {
		if err := c.markUnknown(ctx, n); err != nil {
			return Result{}, err
		}
		c.rec.Eventf(n, corev1.EventTypeWarning, "NodeNotReady", "Node %s stopped renewing its lease at %s: Ready=Unknown, tainted %s:NoExecute",
			name, last.UTC().Format(time.RFC3339), unreachableTaint.Key)
		return Result{}, nil // the write brings the node back
	}
	if !hasTaint(n, unreachableTaint) {
		return Result{}, c.setTaint(ctx, n, true)
	}
	return c.evict(ctx, n)
}

// lastHeartbeat is the latest sign of life: the lease's renewal, the Ready
// condition's heartbeat, or the node's creation.
func (c *NodeLifecycleController) lastHeartbeat(n *corev1.Node) time.Time {
	last := n.CreationTimestamp.Time
	if l, ok := GetCached[*coordinationv1.Lease](c.leases, nodeLeaseNamespace, n.Name); ok && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(last) {
		last = l.Spec.RenewTime.Time
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && cond.LastHeartbeatTime.After(last) {
			last = cond.LastHeartbeatTime.Time
		}
	}
	return last
}

func (c *NodeLifecycleController) assignCIDR(ctx context.Context, n *corev1.Node) error {
	if c.cidrs == nil || n.Spec.PodCIDR != "" {
		return nil
	}
	cidr, err := c.cidrs.allocate(n.Name)
	if err != nil {
		c.rec.Eventf(n, corev1.EventTypeWarning, "CIDRNotAvailable", "%s", err)
		return Terminal(err)
	}
	cp := n.DeepCopy()
	cp.Spec.PodCIDR, cp.Spec.PodCIDRs = cidr, []string{cidr}
	if err := c.st.Update(ctx, cp); err != nil {
		c.cidrs.release(n.Name)
		return fmt.Errorf("node %s pod CIDR %s: %w", n.Name, cidr, err)
	}
	c.rec.Eventf(n, corev1.EventTypeNormal, "CIDRAssigned", "Node %s gets pod CIDR %s", n.Name, cidr)
	return nil
}

// markUnknown sets every condition the agent posts to Unknown, as
// Kubernetes' node lifecycle controller does, and taints the node.
func (c *NodeLifecycleController) markUnknown(ctx context.Context, n *corev1.Node) error {
	cp := n.DeepCopy()
	now := metav1.NewTime(c.now())
	found := false
	for i := range cp.Status.Conditions {
		cond := &cp.Status.Conditions[i]
		found = found || cond.Type == corev1.NodeReady
		if cond.Status != corev1.ConditionUnknown {
			cond.Status, cond.LastTransitionTime = corev1.ConditionUnknown, now
		}
		cond.Reason, cond.Message = "NodeStatusUnknown", "Kubelet stopped posting node status."
	}
	if !found {
		cp.Status.Conditions = append(cp.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			Reason: "NodeStatusNeverUpdated", Message: "Kubelet never posted node status.", LastTransitionTime: now})
	}
	addTaint(cp, now)
	if err := c.st.Update(ctx, cp); err != nil {
		return fmt.Errorf("node %s: mark unreachable: %w", n.Name, err)
	}
	return nil
}

func hasTaint(n *corev1.Node, t corev1.Taint) bool {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].MatchTaint(&t) {
			return true
		}
	}
	return false
}

func addTaint(n *corev1.Node, at metav1.Time) {
	if !hasTaint(n, unreachableTaint) {
		t := unreachableTaint
		t.TimeAdded = &at
		n.Spec.Taints = append(n.Spec.Taints, t)
	}
}

func (c *NodeLifecycleController) setTaint(ctx context.Context, n *corev1.Node, on bool) error {
	cp := n.DeepCopy()
	if on {
		addTaint(cp, metav1.NewTime(c.now()))
	} else {
		cp.Spec.Taints = cp.Spec.Taints[:0]
		for _, t := range n.Spec.Taints {
			if !t.MatchTaint(&unreachableTaint) {
				cp.Spec.Taints = append(cp.Spec.Taints, t)
			}
		}
	}
	if err := c.st.Update(ctx, cp); err != nil {
		return fmt.Errorf("node %s: taint %s: %w", n.Name, unreachableTaint.Key, err)
	}
	return nil
}
