package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

// NamespaceController empties namespaces being deleted: a Namespace with a
// deletionTimestamp shows phase Terminating until everything in it is gone,
// then goes itself. A Namespace deleted outright has its contents deleted too.
type NamespaceController struct {
	*Controller
	st  *store.Store
	nss cache.SharedIndexInformer
}

// NewNamespaceController returns the namespace controller, registered on the
// informers.
func NewNamespaceController(st *store.Store, inf *Informers, opts QueueOptions, log *slog.Logger) *NamespaceController {
	c := &NamespaceController{st: st, nss: inf.For(store.MustResource("namespaces"))}
	c.Controller = NewController("namespace", c, opts, log)
	c.nss.AddEventHandler(c.Handler(SelfKeys))
	return c
}

// Reconcile marks a namespace Active, or empties and deletes one that is
// being deleted.
func (c *NamespaceController) Reconcile(ctx context.Context, name string) (Result, error) {
	ns, ok := GetCached[*corev1.Namespace](c.nss, "", name)
	if !ok {
		live := &corev1.Namespace{}
		if err := c.st.Get(ctx, "", name, live); !errors.Is(err, store.ErrNotFound) {
			return Result{}, err // it exists after all: its event will come
		}
		_, err := c.empty(ctx, name)
		return Result{}, err
	}
	if ns.DeletionTimestamp == nil {
		if ns.Status.Phase == "" {
			return Result{}, c.setPhase(ctx, ns, corev1.NamespaceActive)
		}
		return Result{}, nil
	}
	if ns.Status.Phase != corev1.NamespaceTerminating {
		if err := c.setPhase(ctx, ns, corev1.NamespaceTerminating); err != nil {
			return Result{}, err
		}
	}
	left, err := c.empty(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if left > 0 {
		// Controllers may still be writing into it; look again shortly.
		return Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	if len(ns.Finalizers) > 0 {
		cp := ns.DeepCopy()
		cp.Finalizers = nil
		cp.Spec.Finalizers = nil
		return Result{}, ignoreNotFound(c.st.Update(ctx, cp))
	}
	return Result{}, deleteObject(ctx, c.st, store.MustResource("namespaces"), ns)
}

func (c *NamespaceController) setPhase(ctx context.Context, ns *corev1.Namespace, phase corev1.NamespacePhase) error {
	out := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}, Status: corev1.NamespaceStatus{Phase: phase}}
	return ignoreNotFound(c.st.UpdateStatus(ctx, out))
}

// empty deletes every object in the namespace, workloads first so they stop
// making new pods, and returns how many it found.
func (c *NamespaceController) empty(ctx context.Context, ns string) (int, error) {
	var n int
	for _, r := range namespacedInDeletionOrder() {
		l, err := c.st.List(ctx, r, store.ListOptions{Namespace: ns, Shared: true})
		if err != nil {
			return n, fmt.Errorf("list %s in namespace %s: %w", r, ns, err)
		}
		for _, o := range l.Items {
			n++
			if err := deleteObject(ctx, c.st, r, o); err != nil {
				return n, fmt.Errorf("delete %s %s/%s: %w", r, ns, o.GetName(), err)
			}
		}
	}
	return n, nil
}

func namespacedInDeletionOrder() []store.Resource {
	first := map[string]bool{"deployments.apps": true, "statefulsets.apps": true, "daemonsets.apps": true,
		"cronjobs.batch": true, "jobs.batch": true, "replicasets.apps": true, "replicationcontrollers": true}
	var head, tail []store.Resource
	// Custom resources go with their namespace too, as in Kubernetes: the
	// registry holds the kinds of the CRDs in the store.
	for _, r := range append(store.Resources(), store.CustomResources()...) {
		switch {
		case !r.Namespaced:
		case first[r.GroupResource()]:
			head = append(head, r)
		default:
			tail = append(tail, r)
		}
	}
	return append(head, tail...)
}
