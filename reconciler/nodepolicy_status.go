package reconciler

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// reconcileStatus writes one policy's status: the nodes it matches, and
// Ready: True once every one carries it, False with reason Conflict when
// another policy or the node itself sets one of its keys differently, or
// Progressing while nodes are still being written.
func (c *NodePolicyController) reconcileStatus(ctx context.Context, name string) (Result, error) {
	p, ok := GetCached[*keelsonv1alpha1.NodePolicy](c.policies, "", name)
	if !ok || p.DeletionTimestamp != nil {
		return Result{}, nil
	}
	policies := c.sortedPolicies()
	var matched, conflicts, waiting []string
	for _, o := range c.nodes.GetStore().List() {
		n, ok := o.(*corev1.Node)
		if !ok {
			continue
		}
		rec, _ := readApplied(n) // an unreadable record is reported by the node's reconcile
		w := wantsOf(n, policies, rec)
		if !slices.Contains(w.policies, name) {
			continue
		}
		matched = append(matched, n.Name)
		for _, cf := range w.conflicts {
			if cf.involves(name) {
				conflicts = append(conflicts, cf.String())
			}
		}
		if !carries(n, w, name) {
			waiting = append(waiting, n.Name)
		}
	}
	slices.Sort(matched)
	slices.Sort(conflicts)
	slices.Sort(waiting)
	status := p.Status.DeepCopy()
	status.ObservedGeneration, status.Nodes = p.Generation, matched
	meta.SetStatusCondition(&status.Conditions, readyCondition(p.Generation, len(matched), conflicts, waiting))
	if p.Spec.Drain {
		meta.SetStatusCondition(&status.Conditions, c.drainedCondition(p.Generation, matched))
	} else {
		meta.RemoveStatusCondition(&status.Conditions, keelsonv1alpha1.ConditionDrained)
	}
	if equality.Semantic.DeepEqual(*status, p.Status) {
		return Result{}, nil
	}
	cp := p.DeepCopy()
	cp.Status = *status
	if err := ignoreNotFound(c.st.UpdateStatus(ctx, cp)); err != nil {
		return Result{}, fmt.Errorf("nodepolicy %s: status: %w", name, err)
	}
	return Result{}, nil
}

func readyCondition(gen int64, matched int, conflicts, waiting []string) metav1.Condition {
	cond := metav1.Condition{Type: keelsonv1alpha1.ConditionReady, ObservedGeneration: gen}
	switch {
	case len(conflicts) > 0:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, keelsonv1alpha1.ReasonConflict, conflicts[0]
		if len(conflicts) > 1 {
			cond.Message += fmt.Sprintf(" (and %d more conflicts)", len(conflicts)-1)
		}
	case len(waiting) > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, keelsonv1alpha1.ReasonProgressing
		cond.Message = fmt.Sprintf("%d of %d matching node(s) do not carry the policy yet, first %s", len(waiting), matched, waiting[0])
	case matched == 0:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied, "matches no node"
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied
		cond.Message = fmt.Sprintf("applied to %d node(s)", matched)
	}
	return cond
}
