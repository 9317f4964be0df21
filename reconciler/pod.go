package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

// podActive reports whether a pod counts towards its owner's replicas: not
// finished and not being deleted.
func podActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// podReadyCondition returns the pod's Ready condition, if any.
func podReadyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// podReady reports whether the pod's Ready condition is True.
func podReady(p *corev1.Pod) bool {
	c := podReadyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// podAvailable reports whether the pod has been ready for minReadySeconds at
// now; when it is ready but not yet available, wait says how long remains.
func podAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) (ok bool, wait time.Duration) {
	c := podReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false, 0
	}
	if minReadySeconds == 0 {
		return true, 0
	}
	at := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
	if !at.After(now) {
		return true, 0
	}
	return false, at.Sub(now)
}

// controllerOf returns the pod's controller reference if it is of gvk.
func controllerOf(obj metav1.Object, gvk schema.GroupVersionKind) *metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil || ref.Kind != gvk.Kind || ref.APIVersion != gvk.GroupVersion().String() {
		return nil
	}
	return ref
}

// ownerRef is a controller reference to owner, of kind gvk.
func ownerRef(owner metav1.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: owner.GetName(), UID: owner.GetUID(),
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

// newPod builds a pod from an owner's template, with a generated name.
func newPod(rs *appsv1.ReplicaSet, gvk schema.GroupVersionKind) *corev1.Pod {
	t := rs.Spec.Template.DeepCopy()
	prefix := rs.Name + "-"
	if len(prefix) > 58 {
		prefix = prefix[:58]
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: rs.Namespace, Name: prefix + utilrand.String(5), GenerateName: prefix,
			Labels: t.Labels, Annotations: t.Annotations, Finalizers: t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{ownerRef(rs, gvk)},
		},
		Spec: t.Spec,
	}
}

// deletionOrder sorts pods so those to delete first come first: unscheduled,
// then pending, then not ready, then ready for less time, then newest.
func deletionOrder(pods []*corev1.Pod) {
	rank := func(p *corev1.Pod) int {
		switch {
		case p.Spec.NodeName == "":
			return 0
		case p.Status.Phase == corev1.PodPending:
			return 1
		case !podReady(p):
			return 2
		}
		return 3
	}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if ca, cb := podReadyCondition(a), podReadyCondition(b); ca != nil && cb != nil && !ca.LastTransitionTime.Equal(&cb.LastTransitionTime) {
			return cb.LastTransitionTime.Before(&ca.LastTransitionTime)
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return b.CreationTimestamp.Before(&a.CreationTimestamp)
		}
		return a.Name > b.Name
	})
}

// podWriter creates and deletes an owner's pods with the controller's
// expectations, so that a cache behind the store never makes it write
// twice, and says what it did in the owner's events.
type podWriter struct {
	st  *store.Store
	exp *expectations
	rec *Recorder
}

// create creates pods in transactions of createBatch.
func (w podWriter) create(ctx context.Context, key string, owner store.Object, pods []*corev1.Pod) error {
	for len(pods) > 0 {
		batch := pods[:min(len(pods), createBatch)]
		pods = pods[len(batch):]
		ops := make([]store.Op, len(batch))
		for i, p := range batch {
			ops[i] = store.CreateOp(p)
		}
		w.exp.expectCreations(key, len(batch))
		err := w.st.Txn(ctx, ops...)
		if errors.Is(err, store.ErrForbidden) && len(batch) > 1 {
			w.exp.expectCreations(key, -len(batch))
			n, err := createEach(ctx, w.st, w.exp, key, batch)
			if n > 0 {
				w.rec.Eventf(owner, corev1.EventTypeNormal, "SuccessfulCreate", "Created %d pods", n)
			}
			if err != nil {
				w.rec.Eventf(owner, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
				return fmt.Errorf("%s: create pod: %w", key, err)
			}
			continue
		}
		if err != nil {
			w.exp.expectCreations(key, -len(batch))
			w.rec.Eventf(owner, corev1.EventTypeWarning, "FailedCreate", "Error creating %d pods: %v", len(batch), err)
			return fmt.Errorf("%s: create %d pods: %w", key, len(batch), err)
		}
		w.rec.Eventf(owner, corev1.EventTypeNormal, "SuccessfulCreate", "Created %d pods", len(batch))
	}
	return nil
}

// createEach creates pods one at a time until one is refused, as
// Kubernetes' controllers do, so that the pods a quota has room for are
// made when a whole batch is refused; it returns how many were.
func createEach(ctx context.Context, st *store.Store, exp *expectations, key string, pods []*corev1.Pod) (int, error) {
	for i, p := range pods {
		exp.expectCreations(key, 1)
		if err := st.Create(ctx, p); err != nil {
			exp.expectCreations(key, -1)
			return i, err
		}
	}
	return len(pods), nil
}

// delete deletes exactly these pods (uid preconditions); why, when not
// empty, ends the event.
func (w podWriter) delete(ctx context.Context, key string, owner store.Object, pods []*corev1.Pod, why string) error {
	res := store.MustResource("pods")
	var errs []error
	deleted := 0
	for _, p := range pods {
		uid := p.UID
		w.exp.expectDeletion(key, uid)
		if err := w.st.Delete(ctx, res, p.Namespace, p.Name, &metav1.Preconditions{UID: &uid}); err != nil {
			w.exp.deletionObserved(key, uid)
			if !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err))
			}
			continue
		}
		deleted++
	}
	if deleted > 0 {
		if why != "" {
			why = ": " + why
		}
		w.rec.Eventf(owner, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted %d pods%s", deleted, why)
	}
	return errors.Join(errs...)
}
