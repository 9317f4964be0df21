package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

// disruptedPodTimeout is how long an eviction keeps its pod out of a
// budget's healthy count while the pod is not yet marked deleted, as
// Kubernetes' DeletionTimeout.
const disruptedPodTimeout = 2 * time.Minute

// DisruptionController keeps the status of PodDisruptionBudgets (policy/v1)
// as Kubernetes' disruption controller does: the pods the selector matches,
// how many of them are healthy (Ready, not being deleted, not just
// evicted), how many must be (minAvailable, or the pods' controllers'
// replicas less maxUnavailable, percentages rounded up), and so how many
// disruptions are allowed, with the condition DisruptionAllowed. Drains
// (NodePolicy's drain) consult it and take one disruption in the same
// transaction as each eviction.
type DisruptionController struct {
	*Controller
	st      *store.Store
	budgets cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	sets    cache.SharedIndexInformer
	rsets   cache.SharedIndexInformer
	deploys cache.SharedIndexInformer
	now     func() time.Time
}

// NewDisruptionController returns the controller, registered on the
// informers.
func NewDisruptionController(st *store.Store, inf *Informers, opts QueueOptions, log *slog.Logger) *DisruptionController {
	c := &DisruptionController{st: st, now: time.Now,
		budgets: inf.For(store.MustResource("poddisruptionbudgets.policy")), pods: inf.For(store.MustResource("pods")),
		sets: inf.For(store.MustResource("statefulsets.apps")), rsets: inf.For(store.MustResource("replicasets.apps")),
		deploys: inf.For(store.MustResource("deployments.apps"))}
	c.Controller = NewController("disruption", c, opts, log)
	c.budgets.AddEventHandler(c.Handler(SelfKeys))
	onPod := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			for _, b := range budgetsMatching(c.budgets, p) {
				c.Enqueue(b.Namespace + "/" + b.Name)
			}
		}
	}
	c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, cur any) { onPod(cur) }, DeleteFunc: onPod,
	})
	return c
}

// budgetsMatching are the budgets of the pod's namespace whose selector
// matches it.
func budgetsMatching(budgets cache.SharedIndexInformer, p *corev1.Pod) []*policyv1.PodDisruptionBudget {
	objs, _ := budgets.GetIndexer().ByIndex(IndexNamespace, p.Namespace)
	var out []*policyv1.PodDisruptionBudget
	for _, o := range objs {
		b := o.(*policyv1.PodDisruptionBudget)
		// policy/v1: no selector selects no pod, an empty one every pod
		// of the namespace.
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || b.Spec.Selector == nil {
			continue
		}
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, b)
		}
	}
	return out
}

// Reconcile computes one budget's status and writes it when it changed.
func (c *DisruptionController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.budgets.GetIndexer().GetByKey(key)
	if !ok {
		return Result{}, nil
	}
	b := obj.(*policyv1.PodDisruptionBudget)
	now := c.now()
	status, wait := c.status(b, now)
	if equality.Semantic.DeepEqual(status, b.Status) {
		return Result{RequeueAfter: wait}, nil
	}
	cp := b.DeepCopy()
	cp.Status = status
	if err := ignoreNotFound(c.st.UpdateStatus(ctx, cp)); err != nil {
		return Result{}, fmt.Errorf("poddisruptionbudget %s: status: %w", key, err)
	}
	return Result{RequeueAfter: wait}, nil
}

// status is the budget's status now; wait, when positive, is when an
// eviction's hold on a pod runs out.
func (c *DisruptionController) status(b *policyv1.PodDisruptionBudget, now time.Time) (policyv1.PodDisruptionBudgetStatus, time.Duration) {
	s := *b.Status.DeepCopy()
	s.ObservedGeneration = b.Generation
	pods := c.selected(b)
	// Evictions not yet seen as deletions hold their pod out of the count
	// for a while; the entries of pods gone or deleting are done.
	var wait time.Duration
	live := map[string]*corev1.Pod{}
	for _, p := range pods {
		live[p.Name] = p
	}
	for name, at := range s.DisruptedPods {
		p := live[name]
		left := at.Add(disruptedPodTimeout).Sub(now)
		if p == nil || p.DeletionTimestamp != nil || left <= 0 {
			delete(s.DisruptedPods, name)
			continue
		}
		if wait == 0 || left < wait {
			wait = left
		}
	}
	if len(s.DisruptedPods) == 0 {
		s.DisruptedPods = nil
	}
	healthy := int32(0)
	for _, p := range pods {
		if _, held := s.DisruptedPods[p.Name]; !held && p.DeletionTimestamp == nil && podReady(p) {
			healthy++
		}
	}
	expected, desired, err := c.desired(b, pods)
	s.CurrentHealthy, s.ExpectedPods, s.DesiredHealthy = healthy, expected, desired
	s.DisruptionsAllowed = max(0, healthy-desired)
	cond := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionTrue, Reason: policyv1.SufficientPodsReason,
		ObservedGeneration: b.Generation}
	switch {
	case err != nil:
		s.DisruptionsAllowed = 0
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, policyv1.SyncFailedReason, err.Error()
	case s.DisruptionsAllowed == 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, policyv1.InsufficientPodsReason
	}
	meta.SetStatusCondition(&s.Conditions, cond)
	return s, wait
}

// selected are the budget's pods that have not ended.
func (c *DisruptionController) selected(b *policyv1.PodDisruptionBudget) []*corev1.Pod {
	sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
	if err != nil || b.Spec.Selector == nil {
		return nil
	}
	objs, _ := c.pods.GetIndexer().ByIndex(IndexNamespace, b.Namespace)
	var out []*corev1.Pod
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// desired is Kubernetes' count: an integer minAvailable against the pods
// there are; a percentage, or maxUnavailable, against the replicas of the
// pods' controllers (a pod without one counts as one).
func (c *DisruptionController) desired(b *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (expected, desired int32, err error) {
	if m := b.Spec.MinAvailable; m != nil && m.Type == intstr.Int {
		return int32(len(pods)), m.IntVal, nil
	}
	expected = c.expected(pods)
	switch {
	case b.Spec.MaxUnavailable != nil:
		n, err := scaled(b.Spec.MaxUnavailable, expected)
		if err != nil {
			return expected, 0, fmt.Errorf("maxUnavailable: %w", err)
		}
		return expected, max(0, expected-n), nil
	case b.Spec.MinAvailable != nil:
		n, err := scaled(b.Spec.MinAvailable, expected)
		if err != nil {
			return expected, 0, fmt.Errorf("minAvailable: %w", err)
		}
		return expected, n, nil
	}
	return expected, 0, nil
}

// scaled is an int-or-percent of total, a percentage rounded up.
func scaled(v *intstr.IntOrString, total int32) (int32, error) {
	n, err := intstr.GetScaledValueFromIntOrPercent(v, int(total), true)
	if err != nil {
		return 0, err
	}
	return int32(min(n, math.MaxInt32)), nil
}

// expected adds the replicas of the pods' controllers, each once: a
// Deployment's for the pods of its ReplicaSets.
func (c *DisruptionController) expected(pods []*corev1.Pod) int32 {
	seen := map[types.UID]bool{}
	var n int32
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil {
			n++
			continue
		}
		uid, replicas := ref.UID, int32(1)
		switch ref.Kind {
		case "ReplicaSet":
			rs, ok := GetCached[*appsv1.ReplicaSet](c.rsets, p.Namespace, ref.Name)
			if !ok {
				break
			}
			replicas = replicasOf(rs.Spec.Replicas)
			if dref := metav1.GetControllerOf(rs); dref != nil && dref.Kind == "Deployment" {
				if d, ok := GetCached[*appsv1.Deployment](c.deploys, p.Namespace, dref.Name); ok {
					uid, replicas = d.UID, replicasOf(d.Spec.Replicas)
				}
			}
		case "StatefulSet":
			if s, ok := GetCached[*appsv1.StatefulSet](c.sets, p.Namespace, ref.Name); ok {
				replicas = replicasOf(s.Spec.Replicas)
			}
		}
		if !seen[uid] {
			seen[uid] = true
			n += replicas
		}
	}
	return n
}
