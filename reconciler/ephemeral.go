package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

var podGVK = corev1.SchemeGroupVersion.WithKind("Pod")

// ephemeralClaimName is the claim of a pod's ephemeral volume, as
// Kubernetes names it: "<pod>-<volume>".
func ephemeralClaimName(p *corev1.Pod, v *corev1.Volume) string { return p.Name + "-" + v.Name }

// podClaimName is the claim a pod's volume mounts: its
// persistentVolumeClaim's, or its ephemeral volume's own; "" for other
// volumes.
func podClaimName(p *corev1.Pod, v *corev1.Volume) string {
	switch {
	case v.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim.ClaimName
	case v.Ephemeral != nil:
		return ephemeralClaimName(p, v)
	}
	return ""
}

// EphemeralController makes the claim of each ephemeral volume of a pod
// (ephemeral.volumeClaimTemplate), owned by the pod, so that it lives and
// dies with it: the garbage collector deletes it with the pod.
type EphemeralController struct {
	*Controller
	st     *store.Store
	pods   cache.SharedIndexInformer
	claims cache.SharedIndexInformer
	rec    *Recorder
}

// NewEphemeralController returns the controller, registered on the
// informers.
func NewEphemeralController(st *store.Store, inf *Informers, rec *Recorder, opts QueueOptions, log *slog.Logger) *EphemeralController {
	c := &EphemeralController{st: st, pods: inf.For(store.MustResource("pods")), claims: inf.For(store.MustResource("persistentvolumeclaims")), rec: rec}
	c.Controller = NewController("ephemeral-volume", c, opts, log)
	c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok && hasEphemeral(p) {
				c.EnqueueObject(p)
			}
		},
	})
	c.claims.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			if ref := controllerOf(pvc, podGVK); ref != nil {
				c.Enqueue(pvc.Namespace + "/" + ref.Name)
			}
		}
	}})
	return c
}

func hasEphemeral(p *corev1.Pod) bool {
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Ephemeral != nil {
			return true
		}
	}
	return false
}

// Reconcile makes the missing claims of one pod's ephemeral volumes. A
// claim of that name that is not the pod's is left alone, and said: the
// pod does not start on someone else's data.
func (c *EphemeralController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.pods.GetIndexer().GetByKey(key)
	if !ok {
		return Result{}, nil
	}
	p := obj.(*corev1.Pod)
	if p.DeletionTimestamp != nil || podFinished(p) {
		return Result{}, nil
	}
	var errs []error
	for i := range p.Spec.Volumes {
		v := &p.Spec.Volumes[i]
		if v.Ephemeral == nil || v.Ephemeral.VolumeClaimTemplate == nil {
			continue
		}
		name := ephemeralClaimName(p, v)
		if pvc, ok := GetCached[*corev1.PersistentVolumeClaim](c.claims, p.Namespace, name); ok {
			if ref := metav1.GetControllerOfNoCopy(pvc); ref == nil || ref.UID != p.UID {
				c.rec.Eventf(p, corev1.EventTypeWarning, "FailedBinding", "PVC %s was not created for pod %s (pod is not owner)", name, p.Name)
			}
			continue
		}
		t := v.Ephemeral.VolumeClaimTemplate
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: p.Namespace, Name: name, Labels: maps.Clone(t.Labels), Annotations: maps.Clone(t.Annotations),
				OwnerReferences: []metav1.OwnerReference{ownerRef(p, podGVK)},
			},
			Spec: *t.Spec.DeepCopy(),
		}
		if err := c.st.Create(ctx, pvc); err != nil && !errors.Is(err, store.ErrExists) {
			errs = append(errs, fmt.Errorf("pod %s: create claim %s of its ephemeral volume %q: %w", key, name, v.Name, err))
		}
	}
	return Result{}, errors.Join(errs...)
}
