package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
)

// Delete asks for obj's deletion with a propagation policy, the way writers
// of desired state (gitsync's prune) should delete:
//
//   - Background (the default): obj is deleted now; the garbage collector then
//     deletes its dependents.
//   - Orphan: obj gets a deletionTimestamp and the "orphan" finalizer; the
//     collector removes obj from its dependents' ownerReferences, then deletes
//     it.
//   - Foreground: obj gets a deletionTimestamp and the "foregroundDeletion"
//     finalizer; the collector deletes its dependents first, then obj.
//
// A Namespace always gets a deletionTimestamp: it shows phase Terminating until
// the namespace controller has emptied it. Only the store is written, so the
// same protocol can be followed without this package.
// Errors: those of store.Update and store.Delete.
func Delete(ctx context.Context, st *store.Store, obj store.Object, policy metav1.DeletionPropagation) error {
	r, err := store.ResourceOf(obj)
	if err != nil {
		return err
	}
	_, isNS := obj.(*corev1.Namespace)
	fin := ""
	switch policy {
	case metav1.DeletePropagationOrphan:
		fin = metav1.FinalizerOrphanDependents
	case metav1.DeletePropagationForeground:
		fin = metav1.FinalizerDeleteDependents
	case metav1.DeletePropagationBackground, "":
		if !isNS {
			uid := obj.GetUID()
			pre := &metav1.Preconditions{}
			if uid != "" {
				pre.UID = &uid
			}
			var err error
			for range 5 { // a uid check fails too when the object changes meanwhile
				err = st.Delete(ctx, r, obj.GetNamespace(), obj.GetName(), pre)
				if !errors.Is(err, store.ErrConflict) {
					break
				}
			}
			return err
		}
	default:
		return fmt.Errorf("%w: propagation policy %q", store.ErrInvalid, policy)
	}
	for attempt := 0; ; attempt++ {
		err := markDeleted(ctx, st, r, obj, fin)
		if !errors.Is(err, store.ErrConflict) || attempt == 5 {
			return err
		}
	}
}

// markDeleted sets deletionTimestamp and the finalizer on the stored object,
// if it is still the one asked for (same uid).
func markDeleted(ctx context.Context, st *store.Store, r store.Resource, obj store.Object, fin string) error {
	cp, err := r.New()
	if err != nil {
		return err
	}
	if err := st.Get(ctx, obj.GetNamespace(), obj.GetName(), cp); err != nil {
		return err
	}
	if obj.GetUID() != "" && cp.GetUID() != obj.GetUID() {
		return fmt.Errorf("%s %s: %w: uid %s, stored uid %s", r, obj.GetName(), store.ErrConflict, obj.GetUID(), cp.GetUID())
	}
	if cp.GetDeletionTimestamp() == nil {
		now := metav1.NewTime(time.Now())
		cp.SetDeletionTimestamp(&now)
	}
	if fin != "" && !slices.Contains(cp.GetFinalizers(), fin) {
		cp.SetFinalizers(append(cp.GetFinalizers(), fin))
	}
	return st.Update(ctx, cp)
}
