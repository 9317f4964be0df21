package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

var (
	deploymentGVK = appsv1.SchemeGroupVersion.WithKind("Deployment")
	replicaSetGVK = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
)

// DeploymentController rolls Deployments out through one ReplicaSet per pod
// template (RollingUpdate or Recreate), and writes their status.
//
// It acts one step at a time and only on settled state: after it resizes a
// ReplicaSet it waits until its cache shows that write and the ReplicaSet
// controller has reported status for it, so decisions never rest on pods that
// are about to appear or disappear. That is what keeps total pods within
// replicas+maxSurge and available pods at or above replicas-maxUnavailable at
// every moment of a rollout.
type DeploymentController struct {
	*Controller
	st      *store.Store
	deploys cache.SharedIndexInformer
	rss     cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	rec     *Recorder
	now     func() time.Time
	mu      sync.Mutex
	written map[string]pendingWrite // ReplicaSet key → our last write of it
}

// NewDeploymentController returns the Deployment controller, registered on
// the informers.
func NewDeploymentController(st *store.Store, inf *Informers, rec *Recorder, opts QueueOptions, log *slog.Logger) *DeploymentController {
	c := &DeploymentController{
		st: st, deploys: inf.For(store.MustResource("deployments.apps")), rss: inf.For(store.MustResource("replicasets.apps")),
		pods: inf.For(store.MustResource("pods")), rec: rec, now: time.Now, written: map[string]pendingWrite{},
	}
	c.Controller = NewController("deployment", c, opts, log)
	c.deploys.AddEventHandler(c.Handler(SelfKeys))
	c.rss.AddEventHandler(c.Handler(c.ownerKeys))
	c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		if ref := controllerOf(p, replicaSetGVK); ref != nil {
			if rs, ok := GetCached[*appsv1.ReplicaSet](c.rss, p.Namespace, ref.Name); ok {
				for _, k := range c.ownerKeys(rs) {
					c.Enqueue(k)
				}
			}
		}
	}})
	return c
}

// ownerKeys maps a ReplicaSet to its Deployment, or an orphan to every
// Deployment whose selector matches it.
func (c *DeploymentController) ownerKeys(obj any) []string {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return nil
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if controllerOf(rs, deploymentGVK) != nil {
			return []string{rs.Namespace + "/" + ref.Name}
		}
		return nil
	}
	var keys []string
	for _, d := range ByIndex[*appsv1.Deployment](c.deploys, IndexNamespace, rs.Namespace) {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(rs.Labels)) {
			keys = append(keys, d.Namespace+"/"+d.Name)
		}
	}
	return keys
}

// rollout is what one Reconcile knows about a Deployment.
type rollout struct {
	d     *appsv1.Deployment // shared: do not modify
	key   string
	newRS *appsv1.ReplicaSet
	old   []*appsv1.ReplicaSet // oldest first
	all   []*appsv1.ReplicaSet
	// progressed records a step taken in this pass, for the Progressing
	// condition.
	progressed string
}

// Reconcile takes the next step of one Deployment's rollout and writes its
// status.
func (c *DeploymentController) Reconcile(ctx context.Context, key string) (Result, error) {
	d, ok := GetCached[*appsv1.Deployment](c.deploys, splitNS(key), splitName(key))
	if !ok || d.DeletionTimestamp != nil {
		return Result{}, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		if err == nil {
			err = errors.New("spec.selector selects nothing")
		}
		return Result{}, c.invalid(ctx, d, "InvalidSelector", fmt.Errorf("spec.selector: %w", err))
	}
	r, settled, err := c.load(ctx, key, d, sel)
	if err != nil || !settled {
		return Result{}, err
	}
	if err := c.step(ctx, r); err != nil {
		var inv invalidSpec
		if errors.As(err, &inv) {
			return Result{}, c.invalid(ctx, d, inv.reason, inv.err)
		}
		return Result{}, err
	}
	wait, err := c.writeStatus(ctx, r)
	if err != nil {
		return Result{}, err
	}
	if r.progressed == "" && complete(r) {
		if err := c.cleanup(ctx, r); err != nil {
			return Result{}, err
		}
	}
	return Result{RequeueAfter: wait}, nil
}

// load gathers the Deployment's ReplicaSets (adopting matching orphans) and
// reports whether they are settled: every write of ours is in the cache and
// every ReplicaSet's status is of its current generation.
func (c *DeploymentController) load(ctx context.Context, key string, d *appsv1.Deployment, sel labels.Selector) (*rollout, bool, error) {
	r := &rollout{d: d, key: key}
	for _, rs := range ByIndex[*appsv1.ReplicaSet](c.rss, IndexOrphan, d.Namespace) {
		if sel.Matches(labels.Set(rs.Labels)) {
			cp := rs.DeepCopy()
			cp.OwnerReferences = append(cp.OwnerReferences, ownerRef(d, deploymentGVK))
			if err := c.write(ctx, cp); err != nil {
				return nil, false, fmt.Errorf("adopt replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
			}
			return nil, false, nil
		}
	}
	for _, rs := range ByIndex[*appsv1.ReplicaSet](c.rss, IndexOwner, string(d.UID)) {
		if ref := metav1.GetControllerOfNoCopy(rs); ref == nil || ref.UID != d.UID {
			continue
		}
		if !c.seen(rs) || rs.Status.ObservedGeneration < rs.Generation {
			return nil, false, nil
		}
		r.all = append(r.all, rs)
	}
	byAge(r.all)
	for _, rs := range r.all {
		if r.newRS == nil && sameTemplate(&rs.Spec.Template, &d.Spec.Template) {
			r.newRS = rs
			continue
		}
		r.old = append(r.old, rs)
	}
	return r, true, nil
}

// seen reports whether the cache shows our last write of rs.
func (c *DeploymentController) seen(rs *appsv1.ReplicaSet) bool {
	key := rs.Namespace + "/" + rs.Name
	rv, _ := strconv.ParseInt(rs.ResourceVersion, 10, 64)
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.written[key]
	if !ok {
		return true
	}
	if rv >= w.rv || c.now().Sub(w.at) > expectationsTTL {
		delete(c.written, key)
		return true
	}
	return false
}

// pendingWrite is a ReplicaSet write the cache must show before the next decision.
type pendingWrite struct {
	rv int64
	at time.Time
}

// write updates (or with no resourceVersion, creates) a ReplicaSet and
// remembers the write so that the next pass waits until the cache shows it.
func (c *DeploymentController) write(ctx context.Context, rs *appsv1.ReplicaSet) error {
	var err error
	if rs.ResourceVersion == "" {
		err = c.st.Create(ctx, rs)
	} else {
		err = c.st.Update(ctx, rs)
	}
	if err != nil {
		return err
	}
	rv, _ := strconv.ParseInt(rs.ResourceVersion, 10, 64)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[rs.Namespace+"/"+rs.Name] = pendingWrite{rv: rv, at: now}
	if len(c.written) > 10000 { // entries of ReplicaSets deleted before the cache saw our write
		for k, w := range c.written {
			if now.Sub(w.at) > expectationsTTL {
				delete(c.written, k)
			}
		}
	}
	return nil
}

func splitNS(key string) string {
	ns, _, _ := cache.SplitMetaNamespaceKey(key)
	return ns
}

func splitName(key string) string {
	_, name, _ := cache.SplitMetaNamespaceKey(key)
	return name
}

// invalidSpec is a spec the controller cannot act on until Git changes it.
type invalidSpec struct {
	reason string
	err    error
}

func (e invalidSpec) Error() string { return e.err.Error() }

// invalid marks the Deployment with ReplicaFailure=True and the reason, and
// returns a terminal error: retrying cannot help, a new generation will.
func (c *DeploymentController) invalid(ctx context.Context, d *appsv1.Deployment, reason string, err error) error {
	s := *d.Status.DeepCopy()
	s.ObservedGeneration = d.Generation
	setDeployCondition(&s, appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, reason, err.Error(), c.now(), false)
	out := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: d.Name}, Status: s}
	if werr := c.st.UpdateStatus(ctx, out); werr != nil && !errors.Is(werr, store.ErrNotFound) {
		return werr
	}
	c.rec.Eventf(d, corev1.EventTypeWarning, reason, "%v", err)
	return Terminal(fmt.Errorf("deployment %s/%s: %w", d.Namespace, d.Name, err))
}
