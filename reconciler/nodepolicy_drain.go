package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// drainRetry is how soon a node whose drain is not done is looked at
// again: a budget allows a disruption again when a pod elsewhere becomes
// Ready, which this controller does not watch.
const drainRetry = time.Second

// mirrorPodAnnotation marks a node's static pods, which a drain leaves.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// drainState is what the last drain pass of a node left: pods to evict and
// why those that wait do.
type drainState struct {
	left    int
	waiting []string
}

// drains keeps each draining node's state for the policies' status.
type drains struct {
	mu sync.Mutex
	m  map[string]drainState
}

func (d *drains) set(node string, s drainState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]drainState{}
	}
	d.m[node] = s
}

func (d *drains) get(node string) (drainState, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.m[node]
	return s, ok
}

func (d *drains) forget(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, node)
}

// reconcileDrain evicts, on a node a policy drains, the pods a drain
// takes, once the node is cordoned: each in one transaction with the
// disruption it takes from its PodDisruptionBudget (compare-and-swap on
// the budget), so two evictions never spend one allowed disruption.
func (c *NodePolicyController) reconcileDrain(ctx context.Context, name string) (Result, error) {
	n, ok := GetCached[*corev1.Node](c.nodes, "", name)
	if !ok {
		c.drained.forget(name)
		return Result{}, nil
	}
	rec, _ := readApplied(n)
	policies := c.sortedPolicies()
	w := wantsOf(n, policies, rec)
	var by []string
	for _, p := range policies {
		if p.Spec.Drain && slices.Contains(w.policies, p.Name) {
			by = append(by, p.Name)
		}
	}
	defer func() {
		for _, p := range by {
			c.statusQueue.Enqueue(p)
		}
	}()
	if len(by) == 0 {
		c.drained.forget(name)
		return Result{}, nil
	}
	if !n.Spec.Unschedulable {
		c.drained.set(name, drainState{left: -1, waiting: []string{"node " + name + " is not cordoned yet"}})
		return Result{RequeueAfter: drainRetry}, nil // the node's reconcile cordons it
	}
	state := drainState{}
	var errs []error
	for _, p := range c.evictable(name) {
		why, err := c.evict(ctx, p, by[0])
		switch {
		case err != nil:
			errs = append(errs, err)
			state.left++
		case why != "":
			state.waiting = append(state.waiting, why)
			state.left++
		}
	}
	// A drain is done when the evicted pods have stopped, as kubectl
	// drain waits for them.
	if n := c.stopping(name); n > 0 {
		state.left += n
		state.waiting = append(state.waiting, fmt.Sprintf("%d evicted pods on %s are stopping", n, name))
	}
	slices.Sort(state.waiting)
	state.waiting = slices.Compact(state.waiting)
	c.drained.set(name, state)
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	if state.left > 0 {
		return Result{RequeueAfter: drainRetry}, nil
	}
	return Result{}, nil
}

// evictable are the pods of the node a drain evicts: not a DaemonSet's,
// not a static pod's mirror, not ended, not already being deleted.
func (c *NodePolicyController) evictable(node string) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range c.drainedPods(node) {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	return out
}

// stopping counts the pods of the node a drain takes that are being
// deleted and not gone yet.
func (c *NodePolicyController) stopping(node string) int {
	n := 0
	for _, p := range c.drainedPods(node) {
		if p.DeletionTimestamp != nil {
			n++
		}
	}
	return n
}

// drainedPods are the pods of the node a drain takes, whether deleted or
// not: not a DaemonSet's, not a static pod's mirror, not ended.
func (c *NodePolicyController) drainedPods(node string) []*corev1.Pod {
	objs, _ := c.pods.GetIndexer().ByIndex(IndexNode, node)
	var out []*corev1.Pod
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if _, mirror := p.Annotations[mirrorPodAnnotation]; mirror {
			continue
		}
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "DaemonSet" {
			continue
		}
		out = append(out, p)
	}
	return out
}

// evict marks the pod for deletion when its budget allows, as the
// eviction API does: a Ready pod takes one of the budget's allowed
// disruptions (recorded in disruptedPods, so that the budget's next count
// does not see it healthy); a pod that is not Ready may go while the
// budget has its healthy pods (unhealthyPodEvictionPolicy IfHealthyBudget)
// or always (AlwaysAllow), and takes none. why says why the pod waits.
func (c *NodePolicyController) evict(ctx context.Context, p *corev1.Pod, policy string) (why string, err error) {
	budgets := budgetsMatching(c.budgets, p)
	if len(budgets) > 1 {
		return fmt.Sprintf("pod %s/%s is selected by %d PodDisruptionBudgets, which evictions do not support", p.Namespace, p.Name, len(budgets)), nil
	}
	var ops []store.Op
	now := metav1.NewTime(time.Now())
	if len(budgets) == 1 {
		b := budgets[0]
		title := "PodDisruptionBudget " + b.Namespace + "/" + b.Name
		s := b.Status
		switch {
		case s.ObservedGeneration < b.Generation:
			return title + " is not counted yet", nil
		case !podReady(p):
			if (b.Spec.UnhealthyPodEvictionPolicy == nil || *b.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow) && s.CurrentHealthy < s.DesiredHealthy {
				return fmt.Sprintf("%s has %d healthy pods of %d needed: unready pod %s/%s waits", title, s.CurrentHealthy, s.DesiredHealthy, p.Namespace, p.Name), nil
			}
		case s.DisruptionsAllowed <= 0:
			return fmt.Sprintf("%s allows no disruption (%d healthy, %d needed)", title, s.CurrentHealthy, s.DesiredHealthy), nil
		default:
			cp := b.DeepCopy()
			cp.Status.DisruptionsAllowed--
			if cp.Status.DisruptedPods == nil {
				cp.Status.DisruptedPods = map[string]metav1.Time{}
			}
			cp.Status.DisruptedPods[p.Name] = now
			ops = append(ops, store.UpdateOp(cp))
		}
	}
	cp := p.DeepCopy()
	cp.DeletionTimestamp = &now // the agent stops it within the pod's grace period
	ops = append(ops, store.UpdateOp(cp))
	if err := c.st.Txn(ctx, ops...); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return "", nil // the pod or budget changed: the next pass sees it
		}
		return "", fmt.Errorf("evict pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.rec.Eventf(p, corev1.EventTypeNormal, "Evicted", "Evicted: node %s is drained by NodePolicy %s", p.Spec.NodeName, policy)
	return "", nil
}

// drainedCondition is a draining policy's Drained condition over its nodes.
func (c *NodePolicyController) drainedCondition(gen int64, nodes []string) metav1.Condition {
	cond := metav1.Condition{Type: keelsonv1alpha1.ConditionDrained, ObservedGeneration: gen}
	left := 0
	var waiting, busy []string
	for _, n := range nodes {
		s, ok := c.drained.get(n)
		if !ok {
			s = drainState{left: -1, waiting: []string{"node " + n + " not looked at yet"}}
		}
		if s.left != 0 {
			busy = append(busy, n)
			left += max(0, s.left)
		}
		waiting = append(waiting, s.waiting...)
	}
	if len(busy) == 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, keelsonv1alpha1.ReasonDrained
		cond.Message = fmt.Sprintf("%d nodes cordoned, no pod left to evict", len(nodes))
		return cond
	}
	slices.Sort(waiting)
	cond.Status, cond.Reason = metav1.ConditionFalse, keelsonv1alpha1.ReasonDraining
	cond.Message = fmt.Sprintf("%d pods left to evict on %s", left, strings.Join(busy, ", "))
	if len(waiting) > 0 {
		cond.Message += "; " + strings.Join(slices.Compact(waiting), "; ")
	}
	return cond
}
