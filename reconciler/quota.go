package reconciler

import (
	"context"
	"errors"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/admission"
	"github.com/keelson/keelson/store"
)

// QuotaController fills in the status of a ResourceQuota that has none
// yet, or whose limits changed: status.hard from its spec and status.used
// counted from the store. From then on every write that changes what the
// quota counts updates status.used itself, in its own transaction
// (admission), so the controller only counts quotas anew.
type QuotaController struct {
	*Controller
	st     *store.Store
	quotas cache.SharedIndexInformer
}

// NewQuotaController returns the controller, registered on the informers.
func NewQuotaController(st *store.Store, inf *Informers, opts QueueOptions, log *slog.Logger) *QuotaController {
	c := &QuotaController{st: st, quotas: inf.For(store.MustResource("resourcequotas"))}
	c.Controller = NewController("resourcequota", c, opts, log)
	c.quotas.AddEventHandler(c.Handler(SelfKeys))
	return c
}

// Reconcile counts a quota whose status does not cover its spec and
// writes the count, compare-and-swap on the quota read: a write it raced
// changed the quota, and the count is made again.
func (c *QuotaController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.quotas.GetIndexer().GetByKey(key)
	if !ok {
		return Result{}, nil
	}
	q := obj.(*corev1.ResourceQuota)
	if admission.Current(q) {
		return Result{}, nil
	}
	used, err := admission.Count(ctx, c.st, q, "")
	if err != nil {
		return Result{}, err
	}
	cp := q.DeepCopy()
	cp.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard.DeepCopy(), Used: used}
	err = c.st.UpdateStatus(ctx, cp)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return Result{}, nil // the newer quota comes through the informer
	}
	return Result{}, err
}
