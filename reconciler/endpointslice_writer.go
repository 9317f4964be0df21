package reconciler

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// sliceTxnOps is how many slice writes share one etcd transaction at most.
const sliceTxnOps = 64

// sliceWriter reads and writes the EndpointSlices one controller manages
// (those labelled with its managedBy), remembering its writes until the
// informer shows them.
type sliceWriter struct {
	st        *store.Store
	res       store.Resource
	services  cache.SharedIndexInformer
	slices    cache.SharedIndexInformer
	tracker   *sliceTracker
	managedBy string
	max       int
}

func newSliceWriter(st *store.Store, inf *Informers, managedBy string, max int) *sliceWriter {
	res := store.MustResource("endpointslices.discovery.k8s.io")
	return &sliceWriter{st: st, res: res, services: inf.For(store.MustResource("services")), slices: inf.For(res),
		tracker: newSliceTracker(), managedBy: managedBy, max: max}
}

// load returns the service of key with the writer's slices of it, or a nil
// service when there is nothing to do now: the service is gone (the garbage
// collector removes its slices), the control plane keeps its endpoints, it
// is being deleted, or the cache does not show the writer's last writes yet
// (res then looks again soon).
func (w *sliceWriter) load(key string) (svc *corev1.Service, existing []*discoveryv1.EndpointSlice, res Result, err error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, nil, Result{}, Terminal(err)
	}
	svc, ok := GetCached[*corev1.Service](w.services, ns, name)
	if !ok {
		w.tracker.forget(key)
		return nil, nil, Result{}, nil
	}
	if controlPlaneService(svc) || svc.DeletionTimestamp != nil {
		return nil, nil, Result{}, nil
	}
	existing = w.own(svc)
	if w.tracker.stale(key, existing) {
		return nil, nil, Result{RequeueAfter: staleRetry}, nil
	}
	return svc, existing, Result{}, nil
}

// spec is what the writer's slices of svc look like.
func (w *sliceWriter) spec(svc *corev1.Service) sliceSpec {
	return sliceSpec{svc: svc, managedBy: w.managedBy, max: w.max}
}

// own returns the cached slices of svc this writer manages. Slices of an
// earlier service of the same name (another owner uid) are left to the
// garbage collector.
func (w *sliceWriter) own(svc *corev1.Service) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, s := range ByIndex[*discoveryv1.EndpointSlice](w.slices, IndexLabel, servicenet.LabelServiceName+"="+svc.Name) {
		if s.Namespace != svc.Namespace || s.Labels[servicenet.LabelManagedBy] != w.managedBy {
			continue
		}
		if ref := metav1.GetControllerOfNoCopy(s); ref != nil && ref.UID != svc.UID {
			continue
		}
		out = append(out, s)
	}
	return out
}

// handler enqueues the service of each of the writer's slices that changes,
// and tells the tracker about deleted ones.
func (w *sliceWriter) handler(enqueue func(key string)) cache.ResourceEventHandler {
	key := func(obj any) (string, string, bool) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[servicenet.LabelManagedBy] != w.managedBy || s.Labels[servicenet.LabelServiceName] == "" {
			return "", "", false
		}
		return s.Namespace + "/" + s.Labels[servicenet.LabelServiceName], s.Name, true
	}
	changed := func(obj any) {
		if k, _, ok := key(obj); ok {
			enqueue(k)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    changed,
		UpdateFunc: func(_, cur any) { changed(cur) },
		DeleteFunc: func(obj any) {
			if k, name, ok := key(obj); ok {
				w.tracker.gone(k, name)
				enqueue(k)
			}
		},
	}
}

// apply writes a plan, a transaction per sliceTxnOps writes, compare-and-swap
// on each slice's resourceVersion.
func (w *sliceWriter) apply(ctx context.Context, key string, plan slicePlan) error {
	type write struct {
		op  store.Op
		obj *discoveryv1.EndpointSlice
		del string
	}
	var all []write
	for _, s := range plan.create {
		all = append(all, write{op: store.CreateOp(s), obj: s})
	}
	for _, s := range plan.update {
		all = append(all, write{op: store.UpdateOp(s), obj: s})
	}
	for _, s := range plan.delete {
		rv := s.ResourceVersion
		all = append(all, write{op: store.DeleteOp(w.res, s.Namespace, s.Name, &metav1.Preconditions{ResourceVersion: &rv}), del: s.Name})
	}
	for len(all) > 0 {
		chunk := all[:min(sliceTxnOps, len(all))]
		all = all[len(chunk):]
		ops := make([]store.Op, len(chunk))
		for i, wr := range chunk {
			ops[i] = wr.op
			if wr.del != "" {
				w.tracker.deleting(key, wr.del)
			}
		}
		if err := w.st.Txn(ctx, ops...); err != nil {
			for _, wr := range chunk {
				if wr.del != "" {
					w.tracker.gone(key, wr.del)
				}
			}
			return fmt.Errorf("write %d EndpointSlices of service %s: %w", len(chunk), key, err)
		}
		for _, wr := range chunk {
			if wr.obj != nil {
				w.tracker.wrote(key, wr.obj.Name, wr.obj.ResourceVersion)
			}
		}
	}
	return nil
}

// serviceConditionRetries bounds the compare-and-swap attempts of one
// condition write against the other writers of the service's status.
const serviceConditionRetries = 10

// setServiceCondition puts cond into the service's status.conditions when
// its status, reason or message differ from what is there. Other writers set
// other types in the same list, so the service is read fresh, only cond's
// type is set, and the write is compare-and-swap, retried on conflict.
func setServiceCondition(ctx context.Context, st *store.Store, svc *corev1.Service, cond metav1.Condition) error {
	same := func(conds []metav1.Condition) bool {
		c := meta.FindStatusCondition(conds, cond.Type)
		return c != nil && c.Status == cond.Status && c.Reason == cond.Reason && c.Message == cond.Message
	}
	return updateServiceConditions(ctx, st, svc, same, func(conds *[]metav1.Condition) {
		meta.SetStatusCondition(conds, cond)
	})
}

// removeServiceCondition takes a condition type out of the service's status.
func removeServiceCondition(ctx context.Context, st *store.Store, svc *corev1.Service, condType string) error {
	absent := func(conds []metav1.Condition) bool { return meta.FindStatusCondition(conds, condType) == nil }
	return updateServiceConditions(ctx, st, svc, absent, func(conds *[]metav1.Condition) {
		meta.RemoveStatusCondition(conds, condType)
	})
}

func updateServiceConditions(ctx context.Context, st *store.Store, svc *corev1.Service, done func([]metav1.Condition) bool, change func(*[]metav1.Condition)) error {
	if done(svc.Status.Conditions) {
		return nil
	}
	for range serviceConditionRetries {
		fresh := &corev1.Service{}
		if err := st.Get(ctx, svc.Namespace, svc.Name, fresh); err != nil {
			return ignoreNotFound(err)
		}
		if fresh.UID != svc.UID || done(fresh.Status.Conditions) {
			return nil
		}
		change(&fresh.Status.Conditions)
		err := st.UpdateStatus(ctx, fresh)
		switch {
		case errors.Is(err, store.ErrConflict):
			continue
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("service %s/%s: write status condition: %w", svc.Namespace, svc.Name, err)
		}
		return nil
	}
	return fmt.Errorf("service %s/%s: write status condition: %w after %d attempts", svc.Namespace, svc.Name, store.ErrConflict, serviceConditionRetries)
}
