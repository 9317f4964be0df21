package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

// pvcProtectionFinalizer holds a claim that is being deleted while a pod
// still uses it, as in Kubernetes.
const pvcProtectionFinalizer = "kubernetes.io/pvc-protection"

// PVCProtection keeps a claim in use from going: every claim carries the
// kubernetes.io/pvc-protection finalizer, and a claim marked for deletion
// keeps it (and stays Terminating) until no pod that is not finished uses
// the claim; then the finalizer goes and the garbage collector deletes it.
type PVCProtection struct {
	*Controller
	st     *store.Store
	claims cache.SharedIndexInformer
	pods   cache.SharedIndexInformer
}

// NewPVCProtection returns the controller, registered on the informers.
func NewPVCProtection(st *store.Store, inf *Informers, opts QueueOptions, log *slog.Logger) *PVCProtection {
	c := &PVCProtection{st: st, claims: inf.For(store.MustResource("persistentvolumeclaims")), pods: inf.For(store.MustResource("pods"))}
	c.Controller = NewController("pvc-protection", c, opts, log)
	c.claims.AddEventHandler(c.Handler(SelfKeys))
	onPod := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		for i := range p.Spec.Volumes {
			if name := podClaimName(p, &p.Spec.Volumes[i]); name != "" {
				c.Enqueue(p.Namespace + "/" + name)
			}
		}
	}
	c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, cur any) { onPod(cur) }, DeleteFunc: onPod,
	})
	return c
}

// Reconcile adds the finalizer to a claim, or removes it from a claim
// being deleted that no pod uses.
func (c *PVCProtection) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.claims.GetIndexer().GetByKey(key)
	if !ok {
		return Result{}, nil
	}
	pvc := obj.(*corev1.PersistentVolumeClaim)
	has := slices.Contains(pvc.Finalizers, pvcProtectionFinalizer)
	switch {
	case pvc.DeletionTimestamp == nil && !has:
		cp := pvc.DeepCopy()
		cp.Finalizers = append(cp.Finalizers, pvcProtectionFinalizer)
		return Result{}, c.write(ctx, cp)
	case pvc.DeletionTimestamp != nil && has:
		if user := c.user(pvc); user != nil {
			return Result{}, nil // the pod's events queue the claim again
		}
		cp := pvc.DeepCopy()
		cp.Finalizers = slices.DeleteFunc(cp.Finalizers, func(f string) bool { return f == pvcProtectionFinalizer })
		return Result{}, c.write(ctx, cp)
	}
	return Result{}, nil
}

// user is a pod, not finished, that mounts the claim; nil when none does.
// Pods are read from the cache: one created an instant ago and not seen
// yet would be refused by its scheduler, which finds the claim being
// deleted.
func (c *PVCProtection) user(pvc *corev1.PersistentVolumeClaim) *corev1.Pod {
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexNamespace, pvc.Namespace) {
		if podFinished(p) {
			continue
		}
		for i := range p.Spec.Volumes {
			if podClaimName(p, &p.Spec.Volumes[i]) == pvc.Name {
				return p
			}
		}
	}
	return nil
}

func (c *PVCProtection) write(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	err := c.st.Update(ctx, pvc)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("claim %s/%s: finalizers: %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}
