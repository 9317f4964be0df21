package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

var statefulSetGVK = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// StatefulSetController runs each StatefulSet's pods as ordinals: pod
// name-i with hostname name-i in the subdomain of its service, and the
// claims of its volumeClaimTemplates, which outlive the pod. Pods are
// made in order, each once the one before is Running and available
// (OrderedReady), or all at once (Parallel); removed from the highest
// ordinal down; and rolled to a new template from the highest ordinal
// down to the partition, at most maxUnavailable at a time (RollingUpdate),
// or when someone deletes them (OnDelete). Templates are kept as
// ControllerRevisions, as Kubernetes keeps them.
//
// An ordinal never has two pods at once: a pod's name is its ordinal, and
// the controller deletes a pod by marking it, so the name is free only
// once its node agent has stopped its containers (or its node is gone).
type StatefulSetController struct {
	*Controller
	st     *store.Store
	sets   cache.SharedIndexInformer
	pods   cache.SharedIndexInformer
	claims cache.SharedIndexInformer
	revs   cache.SharedIndexInformer
	rec    *Recorder
	now    func() time.Time
	// backoff delays the replacement of an ordinal whose pod failed: a pod
	// its node refuses at once would otherwise be made again at once.
	backoff podBackoff
}

// NewStatefulSetController returns the StatefulSet controller, registered
// on the informers.
func NewStatefulSetController(st *store.Store, inf *Informers, rec *Recorder, opts QueueOptions, log *slog.Logger) *StatefulSetController {
	c := &StatefulSetController{
		st: st, sets: inf.For(store.MustResource("statefulsets.apps")), pods: inf.For(store.MustResource("pods")),
		claims: inf.For(store.MustResource("persistentvolumeclaims")), revs: inf.For(store.MustResource("controllerrevisions.apps")),
		rec: rec, now: time.Now,
	}
	c.Controller = NewController("statefulset", c, opts, log)
	c.sets.AddEventHandler(c.Handler(SelfKeys))
	owned := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		o, ok := obj.(metav1.Object)
		if !ok {
			return
		}
		if ref := controllerOf(o, statefulSetGVK); ref != nil {
			c.Enqueue(o.GetNamespace() + "/" + ref.Name)
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: owned, UpdateFunc: func(_, cur any) { owned(cur) }, DeleteFunc: owned}
	c.pods.AddEventHandler(h)
	c.revs.AddEventHandler(h)
	// A claim is owned by its set or pod only by some retention policies,
	// and then not as controller: its set is found by its name.
	c.claims.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			for _, o := range ByIndex[*appsv1.StatefulSet](c.sets, cache.NamespaceIndex, pvc.Namespace) {
				c.EnqueueObject(o)
			}
		}
	}})
	return c
}

// Reconcile brings one StatefulSet's ordinals to its spec and writes its
// status.
func (c *StatefulSetController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.sets.GetIndexer().GetByKey(key)
	if !ok {
		return Result{}, nil
	}
	set := obj.(*appsv1.StatefulSet)
	if set.DeletionTimestamp != nil {
		return Result{}, nil // the garbage collector deletes its pods
	}
	var pods []*corev1.Pod
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexOwner, string(set.UID)) {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == set.UID {
			pods = append(pods, p)
		}
	}
	revs := c.ownedRevisions(set)
	cur, upd, err := c.revisions(ctx, set, revs)
	if err != nil {
		return Result{}, err
	}
	wait, err := c.manage(ctx, key, set, cur, upd, pods)
	status := c.status(set, cur, upd, pods)
	if !equality.Semantic.DeepEqual(status, set.Status) {
		out := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: set.Name, ResourceVersion: set.ResourceVersion}, Status: status}
		if werr := c.st.UpdateStatus(ctx, out); werr != nil && !errors.Is(werr, store.ErrNotFound) {
			return Result{}, errors.Join(err, fmt.Errorf("statefulset %s: write status: %w", key, werr))
		}
	}
	if herr := c.truncateHistory(ctx, set, revs, pods, status); herr != nil {
		err = errors.Join(err, herr)
	}
	now := c.now()
	for _, p := range pods {
		if _, w := podAvailable(p, set.Spec.MinReadySeconds, now); w > 0 && (wait == 0 || w < wait) {
			wait = w
		}
	}
	return Result{RequeueAfter: wait}, err
}

// ordinals are the StatefulSet's ordinals: [start, start+replicas).
func ordinals(set *appsv1.StatefulSet) (start, replicas int) {
	if set.Spec.Ordinals != nil {
		start = int(set.Spec.Ordinals.Start)
	}
	return start, int(replicasOf(set.Spec.Replicas))
}

// podOrdinal is the ordinal in a pod's name, -1 when the name is not one of
// set's.
func podOrdinal(set *appsv1.StatefulSet, p *corev1.Pod) int {
	rest, ok := strings.CutPrefix(p.Name, set.Name+"-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return -1
	}
	return n
}

// runningAvailable reports whether p is Running, ready for minReadySeconds
// and not being deleted: a pod the next ordinal may wait on.
func runningAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podAvailableNow(p, minReadySeconds, now)
}

// manage makes the pods and claims of missing ordinals, removes those past
// the replicas, and rolls pods to the update revision. In OrderedReady it
// stops at the first ordinal that is not Running and available.
func (c *StatefulSetController) manage(ctx context.Context, key string, set *appsv1.StatefulSet, cur, upd *revision, pods []*corev1.Pod) (time.Duration, error) {
	start, n := ordinals(set)
	slots := make([]*corev1.Pod, n)
	var condemned []*corev1.Pod
	for _, p := range pods {
		if ord := podOrdinal(set, p); ord >= start && ord < start+n && slots[ord-start] == nil {
			slots[ord-start] = p
		} else {
			condemned = append(condemned, p)
		}
	}
	slices.SortFunc(condemned, func(a, b *corev1.Pod) int { return podOrdinal(set, b) - podOrdinal(set, a) })
	monotonic := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	rolling := set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType
	partition := start
	if ru := set.Spec.UpdateStrategy.RollingUpdate; rolling && ru != nil && ru.Partition != nil {
		partition = start + int(*ru.Partition)
	}
	now := c.now()
	var wait time.Duration
	waitFor := func(w time.Duration) {
		if w > 0 && (wait == 0 || w < wait) {
			wait = w
		}
	}
	var errs []error
	deleted := map[types.UID]bool{} // in this pass, which the pods seen do not show yet

	for i, p := range slots {
		ord := start + i
		if p != nil && podFinished(p) && p.DeletionTimestamp == nil {
			if p.Status.Phase == corev1.PodFailed {
				c.backoff.failed(fmt.Sprintf("%s/%d", key, ord), now)
			}
			errs = append(errs, c.deletePod(ctx, set, p, "it finished ("+string(p.Status.Phase)+")"))
			if monotonic {
				return wait, errors.Join(errs...)
			}
			continue
		}
		if p == nil {
			if w := c.backoff.wait(fmt.Sprintf("%s/%d", key, ord), now); w > 0 {
				waitFor(w)
				if monotonic {
					return wait, errors.Join(errs...)
				}
				continue
			}
			rev := upd
			if ord < partition {
				rev = cur
			}
			errs = append(errs, c.createPod(ctx, set, rev, ord))
			if monotonic {
				return wait, errors.Join(errs...)
			}
			continue
		}
		if p.DeletionTimestamp != nil {
			if monotonic {
				return wait, errors.Join(errs...) // its name is free once its node says it stopped
			}
			continue
		}
		if err := c.ensureClaims(ctx, set, ord, p, false); err != nil {
			errs = append(errs, err)
		}
		if !runningAvailable(p, set.Spec.MinReadySeconds, now) {
			// An old pod that is not Running and Ready is replaced at once
			// when the rollout covers it: waiting on it would hold for ever
			// the rollout that may be its fix (Kubernetes waits, and asks
			// for the pod to be deleted by hand). It serves nothing, so
			// replacing it costs no availability; a Ready pod still inside
			// minReadySeconds is not such a pod.
			if rolling && ord >= partition && p.Labels[appsv1.StatefulSetRevisionLabel] != upd.name &&
				!(p.Status.Phase == corev1.PodRunning && podReady(p)) {
				errs = append(errs, c.deletePod(ctx, set, p, "it is not ready and of an old revision"))
				deleted[p.UID] = true
			}
			if monotonic {
				return wait, errors.Join(errs...)
			}
		}
	}

	for _, p := range condemned {
		if p.DeletionTimestamp != nil {
			if monotonic {
				return wait, errors.Join(errs...)
			}
			continue
		}
		if ord := podOrdinal(set, p); ord >= 0 {
			if err := c.ensureClaims(ctx, set, ord, p, true); err != nil {
				errs = append(errs, err)
				continue // the claims must say who deletes them before the pod goes
			}
		}
		errs = append(errs, c.deletePod(ctx, set, p, "scale down"))
		if monotonic {
			return wait, errors.Join(errs...)
		}
	}

	if !rolling {
		return wait, errors.Join(errs...)
	}
	maxUnavailable := 1
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		v, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, n, false) // a percentage rounds down, as in Kubernetes
		if err != nil {
			return wait, errors.Join(append(errs, Terminal(fmt.Errorf("statefulset %s: spec.updateStrategy.rollingUpdate.maxUnavailable: %w", key, err)))...)
		}
		maxUnavailable = max(v, 1)
	}
	unavailable := 0
	for _, p := range slots {
		if p == nil || !runningAvailable(p, set.Spec.MinReadySeconds, now) {
			unavailable++
		}
	}
	for i := n - 1; i >= 0 && start+i >= partition && unavailable < maxUnavailable; i-- {
		p := slots[i]
		if p == nil || p.DeletionTimestamp != nil || deleted[p.UID] || p.Labels[appsv1.StatefulSetRevisionLabel] == upd.name {
			continue
		}
		errs = append(errs, c.deletePod(ctx, set, p, "rolling update to revision "+upd.name))
		if runningAvailable(p, set.Spec.MinReadySeconds, now) {
			unavailable++
		}
	}
	return wait, errors.Join(errs...)
}

// createPod creates the claims and then the pod of ordinal ord at rev. A
// pod of that name that exists already (a cache behind the store) is left
// as it is.
func (c *StatefulSetController) createPod(ctx context.Context, set *appsv1.StatefulSet, rev *revision, ord int) error {
	if err := c.ensureClaims(ctx, set, ord, nil, false); err != nil {
		c.rec.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", statefulPodName(set, ord), set.Name, err)
		return err
	}
	p := newStatefulPod(set, rev, ord)
	err := c.st.Create(ctx, p)
	switch {
	case err == nil:
		c.rec.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", p.Name, set.Name)
		return nil
	case errors.Is(err, store.ErrExists):
		err = c.adopt(ctx, set, p.Name)
		if err == nil {
			return nil
		}
	}
	c.rec.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", p.Name, set.Name, err)
	return fmt.Errorf("statefulset %s/%s: create pod %s: %w", set.Namespace, set.Name, p.Name, err)
}

// adopt makes a pod of the name of one of set's ordinals that exists
// already the set's: it is the set's (a cache behind the store), or has
// no controller and matches the selector (left by a set deleted with its
// pods orphaned), as Kubernetes adopts. A pod of someone else's blocks the
// ordinal, and the error says whose.
func (c *StatefulSetController) adopt(ctx context.Context, set *appsv1.StatefulSet, name string) error {
	p := &corev1.Pod{}
	if err := c.st.Get(ctx, set.Namespace, name, p); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil // gone meanwhile: the next pass makes it
		}
		return err
	}
	ref := metav1.GetControllerOfNoCopy(p)
	switch {
	case ref != nil && ref.UID == set.UID:
		return nil
	case ref != nil:
		return fmt.Errorf("pod %s exists and belongs to %s %s", name, ref.Kind, ref.Name)
	}
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(p.Labels)) {
		return fmt.Errorf("pod %s exists, has no controller and does not match the selector", name)
	}
	if p.DeletionTimestamp != nil {
		return nil // on its way out: the ordinal is made again once it is gone
	}
	p.OwnerReferences = append(p.OwnerReferences, ownerRef(set, statefulSetGVK))
	if err := c.st.Update(ctx, p); err != nil {
		return fmt.Errorf("adopt pod %s: %w", name, err)
	}
	return nil
}

// deletePod marks the pod for deletion. Its node agent stops it and then
// removes it, and only then is its ordinal made again: a pod is never
// deleted outright while its containers may still run.
func (c *StatefulSetController) deletePod(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod, why string) error {
	err := markDeleted(ctx, c.st, store.MustResource("pods"), p, "")
	switch {
	case err == nil:
		c.rec.Eventf(set, corev1.EventTypeNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful: %s", p.Name, set.Name, why)
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		return nil // gone, or a newer pod of that name: the next pass sees it
	}
	c.rec.Eventf(set, corev1.EventTypeWarning, "FailedDelete", "delete Pod %s in StatefulSet %s failed error: %v", p.Name, set.Name, err)
	return fmt.Errorf("statefulset %s/%s: delete pod %s: %w", set.Namespace, set.Name, p.Name, err)
}

// status counts the pods as Kubernetes does: every pod that exists,
// ready and available ones, and those of the current and the update
// revision that are not being deleted. A rollout that has brought every
// pod to the update revision, ready, makes it current.
func (c *StatefulSetController) status(set *appsv1.StatefulSet, cur, upd *revision, pods []*corev1.Pod) appsv1.StatefulSetStatus {
	now := c.now()
	s := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation, CollisionCount: set.Status.CollisionCount, Conditions: set.Status.Conditions,
		CurrentRevision: cur.name, UpdateRevision: upd.name,
	}
	for _, p := range pods {
		s.Replicas++
		if p.Status.Phase == corev1.PodRunning && podReady(p) {
			s.ReadyReplicas++
			if podAvailableNow(p, set.Spec.MinReadySeconds, now) {
				s.AvailableReplicas++
			}
		}
		if p.DeletionTimestamp == nil {
			if p.Labels[appsv1.StatefulSetRevisionLabel] == cur.name {
				s.CurrentReplicas++
			}
			if p.Labels[appsv1.StatefulSetRevisionLabel] == upd.name {
				s.UpdatedReplicas++
			}
		}
	}
	if s.UpdatedReplicas == s.Replicas && s.ReadyReplicas == s.Replicas && s.Replicas == replicasOf(set.Spec.Replicas) {
		s.CurrentRevision, s.CurrentReplicas = upd.name, s.UpdatedReplicas
	}
	return s
}
