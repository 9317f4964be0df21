package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/internal/storageclass"
	"github.com/keelson/keelson/store"
)

// PVBinder binds PersistentVolumeClaims to PersistentVolumes, as
// Kubernetes' persistent volume controller does: a claim gets the smallest
// available volume that fits it (class, volume mode, access modes,
// capacity, selector, volumeName), both sides written in one transaction
// (the volume's claimRef, the claim's volumeName, both phases Bound), so
// that a crash never leaves one side bound. A claim whose class binds when
// a pod needs it (WaitForFirstConsumer) waits for the scheduler to choose
// its node. A claim whose volume is gone is Lost; a volume whose claim is
// gone is Released and then kept (Retain) or deleted (Delete).
type PVBinder struct {
	*Controller
	st      *store.Store
	claims  cache.SharedIndexInformer
	volumes cache.SharedIndexInformer
	classes cache.SharedIndexInformer
	nodes   cache.SharedIndexInformer
	rec     *Recorder
}

// Keys of the binder's queue: a claim "claim/<namespace>/<name>" or a
// volume "volume/<name>".
const (
	claimKeyPrefix  = "claim/"
	volumeKeyPrefix = "volume/"
)

// NewPVBinder returns the binder, registered on the informers.
func NewPVBinder(st *store.Store, inf *Informers, rec *Recorder, opts QueueOptions, log *slog.Logger) *PVBinder {
	b := &PVBinder{
		st: st, claims: inf.For(store.MustResource("persistentvolumeclaims")), volumes: inf.For(store.MustResource("persistentvolumes")),
		classes: inf.For(store.MustResource("storageclasses.storage.k8s.io")), nodes: inf.For(store.MustResource("nodes")), rec: rec,
	}
	b.Controller = NewController("persistentvolume-binder", b, opts, log)
	unwrap := func(obj any) any {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			return t.Obj
		}
		return obj
	}
	onClaim := func(obj any) {
		pvc, ok := unwrap(obj).(*corev1.PersistentVolumeClaim)
		if !ok {
			return
		}
		b.Enqueue(claimKeyPrefix + pvc.Namespace + "/" + pvc.Name)
		if pvc.Spec.VolumeName != "" {
			b.Enqueue(volumeKeyPrefix + pvc.Spec.VolumeName)
		}
	}
	b.claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onClaim, UpdateFunc: func(_, cur any) { onClaim(cur) }, DeleteFunc: onClaim,
	})
	onVolume := func(obj any) {
		pv, ok := unwrap(obj).(*corev1.PersistentVolume)
		if !ok {
			return
		}
		b.Enqueue(volumeKeyPrefix + pv.Name)
		if ref := pv.Spec.ClaimRef; ref != nil {
			b.Enqueue(claimKeyPrefix + ref.Namespace + "/" + ref.Name)
		}
		b.enqueueUnbound() // a new or freed volume may fit a waiting claim
	}
	b.volumes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onVolume, UpdateFunc: func(_, cur any) { onVolume(cur) }, DeleteFunc: onVolume,
	})
	b.classes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { b.enqueueUnbound() }, UpdateFunc: func(any, any) { b.enqueueUnbound() },
	})
	// A node that comes may be one a claim waits for; one that goes, one a
	// claim must be chosen again for.
	b.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { b.enqueueUnbound() }, DeleteFunc: func(any) { b.enqueueUnbound() },
	})
	return b
}

func (b *PVBinder) enqueueUnbound() {
	for _, o := range b.claims.GetIndexer().List() {
		if pvc := o.(*corev1.PersistentVolumeClaim); pvc.Status.Phase != corev1.ClaimBound {
			b.Enqueue(claimKeyPrefix + pvc.Namespace + "/" + pvc.Name)
		}
	}
}

// Reconcile syncs one claim or one volume.
func (b *PVBinder) Reconcile(ctx context.Context, key string) (Result, error) {
	switch {
	case strings.HasPrefix(key, claimKeyPrefix):
		obj, ok, _ := b.claims.GetIndexer().GetByKey(strings.TrimPrefix(key, claimKeyPrefix))
		if !ok {
			return Result{}, nil
		}
		return Result{}, b.syncClaim(ctx, obj.(*corev1.PersistentVolumeClaim))
	case strings.HasPrefix(key, volumeKeyPrefix):
		obj, ok, _ := b.volumes.GetIndexer().GetByKey(strings.TrimPrefix(key, volumeKeyPrefix))
		if !ok {
			return Result{}, nil
		}
		return Result{}, b.syncVolume(ctx, obj.(*corev1.PersistentVolume))
	}
	return Result{}, Terminal(fmt.Errorf("persistentvolume-binder: bad key %q", key))
}

func (b *PVBinder) listClasses() []*storagev1.StorageClass {
	var out []*storagev1.StorageClass
	for _, o := range b.classes.GetIndexer().List() {
		out = append(out, o.(*storagev1.StorageClass))
	}
	return out
}

func (b *PVBinder) listVolumes() []*corev1.PersistentVolume {
	var out []*corev1.PersistentVolume
	for _, o := range b.volumes.GetIndexer().List() {
		out = append(out, o.(*corev1.PersistentVolume))
	}
	return out
}

// syncClaim binds a claim that is not bound yet, completes a binding that
// is half done, and marks a claim whose volume is gone Lost.
func (b *PVBinder) syncClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.DeletionTimestamp != nil {
		return nil
	}
	if pvc.Spec.VolumeName != "" && (pvc.Status.Phase == corev1.ClaimBound || pvc.Status.Phase == corev1.ClaimLost) {
		pv, ok := GetCached[*corev1.PersistentVolume](b.volumes, "", pvc.Spec.VolumeName)
		if !ok {
			if gone, err := b.volumeGone(ctx, pvc.Spec.VolumeName); err != nil || !gone {
				return err
			}
			if pvc.Status.Phase == corev1.ClaimBound {
				b.rec.Eventf(pvc, corev1.EventTypeWarning, "ClaimLost", "Bound claim has lost its PersistentVolume %s. Data on the volume is lost!", pvc.Spec.VolumeName)
			}
			return b.setClaimPhase(ctx, pvc, corev1.ClaimLost) // until the volume comes back
		}
		if ref := pv.Spec.ClaimRef; ref != nil && ref.UID == pvc.UID {
			return nil // bound both ways
		}
	}
	classes := b.listClasses()
	class := claimClass(pvc, classes)
	var node *corev1.Node
	if sc := findClass(classes, class); sc != nil && sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
		name := pvc.Annotations[annSelectedNode]
		if name == "" {
			return b.setClaimPending(ctx, pvc, "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
		}
		n, ok := GetCached[*corev1.Node](b.nodes, "", name)
		if !ok {
			err := b.st.Get(ctx, "", name, &corev1.Node{})
			if !errors.Is(err, store.ErrNotFound) {
				return err // there, and the cache behind; or etcd away
			}
			// The node chosen for the claim is gone before its volume was
			// made: the choice is dropped, and the scheduler, which the
			// claim's change wakes, chooses again.
			cp := pvc.DeepCopy()
			delete(cp.Annotations, annSelectedNode)
			if err := b.st.Update(ctx, cp); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("claim %s/%s: drop the node chosen for it: %w", pvc.Namespace, pvc.Name, err)
			}
			b.rec.Eventf(pvc, corev1.EventTypeWarning, "NodeGone", "node %s, chosen for the claim's first pod, is gone: a node is chosen again", name)
			return nil
		}
		node = n
	}
	pv := findVolume(pvc, class, b.listVolumes(), node)
	if pv == nil {
		msg := "no persistent volumes available for this claim and no storage class is set"
		switch {
		case pvc.Spec.VolumeName != "":
			msg = fmt.Sprintf("volume %q does not exist, holds another claim or does not fit this one", pvc.Spec.VolumeName)
		case class != "":
			msg = fmt.Sprintf("no persistent volume of storage class %q fits this claim, and nothing provisions one for it", class)
		}
		return b.setClaimPending(ctx, pvc, "FailedBinding", msg)
	}
	return b.bind(ctx, pvc, pv)
}

func findClass(classes []*storagev1.StorageClass, name string) *storagev1.StorageClass {
	return storageclass.Find(classes, name)
}

// volumeGone confirms with a read of etcd that a volume missing from the
// cache is gone, so that a claim is never taken as Lost by a cache behind.
func (b *PVBinder) volumeGone(ctx context.Context, name string) (bool, error) {
	err := b.st.Get(ctx, "", name, &corev1.PersistentVolume{})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	return false, nil
}

// bind writes both sides of a binding in one transaction: the volume's
// claimRef and phase, the claim's volumeName, phase, capacity and access
// modes. A conflict (either side changed meanwhile) leaves both as they
// were, and the next pass sees the new state.
func (b *PVBinder) bind(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) error {
	v := pv.DeepCopy()
	byController := v.Spec.ClaimRef == nil
	v.Spec.ClaimRef = &corev1.ObjectReference{
		Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
		ResourceVersion: pvc.ResourceVersion,
	}
	v.Status.Phase, v.Status.Message, v.Status.Reason = corev1.VolumeBound, "", ""
	if byController {
		v.Annotations = withAnnotation(v.Annotations, annBoundByController, "yes")
	}
	c := pvc.DeepCopy()
	if c.Spec.VolumeName == "" {
		c.Annotations = withAnnotation(c.Annotations, annBoundByController, "yes")
	}
	c.Spec.VolumeName = pv.Name
	c.Annotations = withAnnotation(c.Annotations, annBindCompleted, "yes")
	c.Status.Phase = corev1.ClaimBound
	c.Status.AccessModes = pv.Spec.AccessModes
	c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: pv.Spec.Capacity[corev1.ResourceStorage]}
	if err := b.st.Txn(ctx, store.UpdateOp(v), store.UpdateOp(c)); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return nil // the events of the newer objects queue them again
		}
		return fmt.Errorf("bind claim %s/%s to volume %s: %w", pvc.Namespace, pvc.Name, pv.Name, err)
	}
	b.rec.Eventf(pvc, corev1.EventTypeNormal, "Bound", "Bound to PersistentVolume %s", pv.Name)
	return nil
}

func withAnnotation(a map[string]string, k, v string) map[string]string {
	a = maps.Clone(a)
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	return a
}

// setClaimPending says why a claim is not bound: phase Pending and an
// event with the reason, once per reason.
func (b *PVBinder) setClaimPending(ctx context.Context, pvc *corev1.PersistentVolumeClaim, reason, msg string) error {
	typ := corev1.EventTypeWarning
	if reason == "WaitForFirstConsumer" {
		typ = corev1.EventTypeNormal
	}
	if pvc.Status.Phase != corev1.ClaimPending {
		b.rec.Eventf(pvc, typ, reason, "%s", msg)
	}
	return b.setClaimPhase(ctx, pvc, corev1.ClaimPending)
}

func (b *PVBinder) setClaimPhase(ctx context.Context, pvc *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase) error {
	if pvc.Status.Phase == phase {
		return nil
	}
	c := pvc.DeepCopy()
	c.Status.Phase = phase
	if err := b.st.UpdateStatus(ctx, c); err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("claim %s/%s: phase %s: %w", pvc.Namespace, pvc.Name, phase, err)
	}
	return nil
}

// syncVolume keeps a volume's phase: Available without a claim, Bound with
// its claim, Released once its claim is gone, and then kept (Retain) or
// deleted (Delete).
func (b *PVBinder) syncVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.DeletionTimestamp != nil {
		return nil
	}
	ref := pv.Spec.ClaimRef
	switch {
	case ref == nil || ref.UID == "":
		return b.setVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
	case pv.Status.Phase == corev1.VolumeReleased || pv.Status.Phase == corev1.VolumeFailed:
		return b.reclaim(ctx, pv)
	}
	pvc, ok := GetCached[*corev1.PersistentVolumeClaim](b.claims, ref.Namespace, ref.Name)
	if !ok {
		live := &corev1.PersistentVolumeClaim{}
		switch err := b.st.Get(ctx, ref.Namespace, ref.Name, live); {
		case err == nil:
			pvc, ok = live, true
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	if ok && pvc.UID == ref.UID {
		return b.setVolumePhase(ctx, pv, corev1.VolumeBound, "")
	}
	b.rec.Eventf(pv, corev1.EventTypeNormal, "VolumeReleased", "claim %s/%s is gone: reclaim policy %s", ref.Namespace, ref.Name, reclaimPolicy(pv))
	if err := b.setVolumePhase(ctx, pv, corev1.VolumeReleased, ""); err != nil {
		return err
	}
	return nil // the phase's update event reclaims it
}

func reclaimPolicy(pv *corev1.PersistentVolume) corev1.PersistentVolumeReclaimPolicy {
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		return corev1.PersistentVolumeReclaimRetain
	}
	return pv.Spec.PersistentVolumeReclaimPolicy
}

// reclaim acts on a Released volume by its reclaim policy: Retain keeps it
// and its data for someone to look at; Delete deletes the volume (a
// provisioner's finalizer, when it has one, holds it until the data is
// gone); Recycle, deprecated in Kubernetes, is not done.
func (b *PVBinder) reclaim(ctx context.Context, pv *corev1.PersistentVolume) error {
	switch reclaimPolicy(pv) {
	case corev1.PersistentVolumeReclaimDelete:
		if err := markDeleted(ctx, b.st, store.MustResource("persistentvolumes"), pv, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete released volume %s: %w", pv.Name, err)
		}
		return nil
	case corev1.PersistentVolumeReclaimRecycle:
		return b.setVolumePhase(ctx, pv, corev1.VolumeFailed, "reclaim policy Recycle is not supported: use Delete or Retain")
	}
	return nil
}

func (b *PVBinder) setVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, msg string) error {
	want := corev1.PersistentVolumeStatus{Phase: phase, Message: msg, LastPhaseTransitionTime: pv.Status.LastPhaseTransitionTime}
	if pv.Status.Phase != phase {
		now := metav1.Now()
		want.LastPhaseTransitionTime = &now
	}
	if equality.Semantic.DeepEqual(want, pv.Status) {
		return nil
	}
	v := pv.DeepCopy()
	v.Status = want
	if err := b.st.UpdateStatus(ctx, v); err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("volume %s: phase %s: %w", pv.Name, phase, err)
	}
	return nil
}
