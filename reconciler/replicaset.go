package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

// ReplicaSetController keeps exactly spec.replicas pods matching the selector
// of each ReplicaSet (or ReplicationController): it creates pods from the
// template, adopts matching orphans, releases pods that stop matching, deletes
// the surplus (unscheduled, then not ready, then newest first) and writes the
// status.
type ReplicaSetController struct {
	*Controller
	st     *store.Store
	kind   podOwnerKind
	owners cache.SharedIndexInformer
	pods   cache.SharedIndexInformer
	exp    *expectations
	rec    *Recorder
	now    func() time.Time
}

// NewReplicaSetController returns the ReplicaSet controller, registered on
// the informers.
func NewReplicaSetController(st *store.Store, inf *Informers, rec *Recorder, opts QueueOptions, log *slog.Logger) *ReplicaSetController {
	return newPodOwnerController(st, inf, rec, replicaSetKind, opts, log)
}

// NewReplicationControllerController returns the ReplicationController
// controller, registered on the informers.
func NewReplicationControllerController(st *store.Store, inf *Informers, rec *Recorder, opts QueueOptions, log *slog.Logger) *ReplicaSetController {
	return newPodOwnerController(st, inf, rec, replicationControllerKind, opts, log)
}

func newPodOwnerController(st *store.Store, inf *Informers, rec *Recorder, kind podOwnerKind, opts QueueOptions, log *slog.Logger) *ReplicaSetController {
	c := &ReplicaSetController{
		st: st, kind: kind, owners: inf.For(kind.res), pods: inf.For(store.MustResource("pods")),
		exp: newExpectations(), rec: rec, now: time.Now,
	}
	c.Controller = NewController(kind.name, c, opts, log)
	c.owners.AddEventHandler(c.Handler(SelfKeys))
	c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			p := obj.(*corev1.Pod)
			if ref := controllerOf(p, kind.gvk); ref != nil {
				c.exp.creationObserved(p.Namespace + "/" + ref.Name)
			}
			c.enqueueFor(p)
		},
		UpdateFunc: func(old, cur any) {
			c.enqueueFor(old.(*corev1.Pod))
			c.enqueueFor(cur.(*corev1.Pod))
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			if ref := controllerOf(p, kind.gvk); ref != nil {
				c.exp.deletionObserved(p.Namespace+"/"+ref.Name, p.UID)
			}
			c.enqueueFor(p)
		},
	})
	return c
}

// enqueueFor queues the owner of a pod, or, for an orphan, every owner in its
// namespace whose selector matches it (adoption).
func (c *ReplicaSetController) enqueueFor(p *corev1.Pod) {
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if controllerOf(p, c.kind.gvk) != nil {
			c.Enqueue(p.Namespace + "/" + ref.Name)
		}
		return
	}
	for _, o := range ByIndex[store.Object](c.owners, IndexNamespace, p.Namespace) {
		_, sel, err := c.kind.view(o)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
			c.Enqueue(p.Namespace + "/" + o.GetName())
		}
	}
}

// Reconcile brings one ReplicaSet's pods to spec.replicas and writes status.
func (c *ReplicaSetController) Reconcile(ctx context.Context, key string) (Result, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return Result{}, Terminal(err)
	}
	obj, ok, _ := c.owners.GetIndexer().GetByKey(key)
	if !ok {
		c.exp.forget(key)
		return Result{}, nil
	}
	rs, sel, err := c.kind.view(obj)
	if err != nil {
		return Result{}, c.fail(ctx, obj, rs, "InvalidSelector", Terminal(err))
	}
	pods, err := c.claim(ctx, obj.(store.Object), rs, sel)
	if err != nil {
		return Result{}, err
	}
	var manageErr error
	if rs.DeletionTimestamp == nil && c.exp.satisfied(key) {
		pods, manageErr = c.manage(ctx, key, obj.(store.Object), rs, pods)
	}
	status, wait := c.status(rs, sel, pods, manageErr)
	if !equalStatus(c.kind.status(obj), status) {
		if err := c.kind.writeStatus(ctx, c.st, obj, status); err != nil && !errors.Is(err, store.ErrNotFound) {
			return Result{}, fmt.Errorf("%s %s/%s: write status: %w", c.kind.name, ns, name, err)
		}
	}
	if manageErr != nil {
		return Result{}, manageErr
	}
	return Result{RequeueAfter: wait}, nil
}

func (c *ReplicaSetController) fail(ctx context.Context, obj any, rs *appsv1.ReplicaSet, reason string, err error) error {
	cur := c.kind.status(obj)
	status := *cur.DeepCopy()
	setRSCondition(&status, appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: reason, Message: err.Error()}, c.now())
	status.ObservedGeneration = rs.Generation
	if werr := c.kind.writeStatus(ctx, c.st, obj, status); werr != nil && !errors.Is(werr, store.ErrNotFound) {
		return werr
	}
	c.rec.Eventf(obj.(store.Object), corev1.EventTypeWarning, reason, "%v", err)
	return err
}

// claim returns the active pods the owner controls after adopting matching
// orphans and releasing its pods that stopped matching.
func (c *ReplicaSetController) claim(ctx context.Context, owner store.Object, rs *appsv1.ReplicaSet, sel labels.Selector) ([]*corev1.Pod, error) {
	var owned []*corev1.Pod
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexOwner, string(rs.UID)) {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil || ref.UID != rs.UID {
			continue
		}
		if sel.Empty() || !sel.Matches(labels.Set(p.Labels)) {
			if err := c.release(ctx, owner, rs, p); err != nil {
				return nil, err
			}
			continue
		}
		if podActive(p) && !c.exp.deleting(rs.Namespace+"/"+rs.Name, p.UID) {
			owned = append(owned, p)
		}
	}
	if rs.DeletionTimestamp != nil || sel.Empty() {
		return owned, nil
	}
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexOrphan, rs.Namespace) {
		if !podActive(p) || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		adopted, err := c.adopt(ctx, owner, rs, p)
		if err != nil {
			return nil, err
		}
		if adopted != nil {
			owned = append(owned, adopted)
		}
	}
	return owned, nil
}

func (c *ReplicaSetController) adopt(ctx context.Context, owner store.Object, rs *appsv1.ReplicaSet, p *corev1.Pod) (*corev1.Pod, error) {
	cp := p.DeepCopy()
	cp.OwnerReferences = append(cp.OwnerReferences, ownerRef(rs, c.kind.gvk))
	if err := c.st.Update(ctx, cp); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("adopt pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.rec.Eventf(owner, corev1.EventTypeNormal, "Adopted", "Adopted pod %s", p.Name)
	return cp, nil
}

func (c *ReplicaSetController) release(ctx context.Context, owner store.Object, rs *appsv1.ReplicaSet, p *corev1.Pod) error {
	cp := p.DeepCopy()
	refs := cp.OwnerReferences[:0]
	for _, r := range cp.OwnerReferences {
		if r.UID != rs.UID {
			refs = append(refs, r)
		}
	}
	cp.OwnerReferences = refs
	if err := c.st.Update(ctx, cp); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("release pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.rec.Eventf(owner, corev1.EventTypeNormal, "Released", "Released pod %s: its labels no longer match", p.Name)
	return nil
}

func equalStatus(a, b appsv1.ReplicaSetStatus) bool {
	strip := func(s appsv1.ReplicaSetStatus) appsv1.ReplicaSetStatus {
		s = *s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		return s
	}
	return equality.Semantic.DeepEqual(strip(a), strip(b))
}
