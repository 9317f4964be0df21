package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
)

// evict marks for deletion the node's pods whose toleration of the
// unreachable taint has run out, and comes back when the next one runs out.
// As in Kubernetes, a pod is only marked (deletionTimestamp): its
// controller replaces it at once, and the object goes when the node's agent
// confirms its containers stopped, or when the node is deleted. Deleting it
// outright would let a pod of the same name (a StatefulSet's) start
// elsewhere while the lost node may still run the old one.
func (c *NodeLifecycleController) evict(ctx context.Context, n *corev1.Node) (Result, error) {
	var since time.Time
	for _, t := range n.Spec.Taints {
		if t.MatchTaint(&unreachableTaint) && t.TimeAdded != nil {
			since = t.TimeAdded.Time
		}
	}
	if c.allUnreachable() {
		// Every node lost at once is the control plane's network, not the
		// nodes: evicting would move nothing anywhere useful.
		return Result{RequeueAfter: c.opts.GracePeriod}, nil
	}
	var next time.Duration
	now := c.now()
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexNode, n.Name) {
		if p.DeletionTimestamp != nil {
			continue
		}
		secs, forever := c.tolerationSeconds(p)
		if forever {
			continue
		}
		if wait := since.Add(time.Duration(secs) * time.Second).Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		if r := c.limiter.Reserve(); r.Delay() > 0 {
			r.Cancel()
			next = 200 * time.Millisecond
			continue
		}
		err := markDeleted(ctx, c.st, store.MustResource("pods"), p, "")
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			return Result{}, fmt.Errorf("evict pod %s/%s from node %s: %w", p.Namespace, p.Name, n.Name, err)
		}
		c.rec.Eventf(n, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion pod %s/%s: node %s unreachable", p.Namespace, p.Name, n.Name)
	}
	return Result{RequeueAfter: next}, nil
}

// deleteOrphans deletes, a grace period after their Node was deleted, the
// pods still bound to it, so that their controllers recreate them elsewhere.
func (c *NodeLifecycleController) deleteOrphans(ctx context.Context, node string, since time.Time) (Result, error) {
	if wait := since.Add(c.opts.GracePeriod).Sub(c.now()); wait > 0 {
		return Result{RequeueAfter: wait}, nil
	}
	left := false
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexNode, node) {
		if r := c.limiter.Reserve(); r.Delay() > 0 {
			r.Cancel()
			left = true
			continue
		}
		err := c.st.Delete(ctx, store.MustResource("pods"), p.Namespace, p.Name, &metav1.Preconditions{UID: &p.UID})
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			return Result{}, fmt.Errorf("delete pod %s/%s of deleted node %s: %w", p.Namespace, p.Name, node, err)
		}
		c.rec.Eventf(p, corev1.EventTypeNormal, "NodeDeleted", "Deleted pod %s/%s: its node %s was deleted", p.Namespace, p.Name, node)
	}
	if left {
		return Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	c.goneMu.Lock()
	delete(c.gone, node)
	c.goneMu.Unlock()
	return Result{}, nil
}

// tolerationSeconds is how long the pod stays on an unreachable node;
// forever when it tolerates the taint without a limit.
func (c *NodeLifecycleController) tolerationSeconds(p *corev1.Pod) (secs int64, forever bool) {
	for i := range p.Spec.Tolerations {
		t := &p.Spec.Tolerations[i]
		if !t.ToleratesTaint(klogBackground, &unreachableTaint, false) {
			continue
		}
		if t.TolerationSeconds == nil {
			return 0, true
		}
		return max(*t.TolerationSeconds, 0), false
	}
	return c.opts.TolerationSeconds, false
}

func (c *NodeLifecycleController) allUnreachable() bool {
	nodes := c.nodes.GetStore().List()
	for _, o := range nodes {
		if n, ok := o.(*corev1.Node); ok && nodeReadyStatus(n) == corev1.ConditionTrue {
			return false
		}
	}
	return len(nodes) > 1
}
