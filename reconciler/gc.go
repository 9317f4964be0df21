package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

// GarbageCollector deletes objects whose owners are gone (ownerReferences),
// and carries out deletions that were asked for by setting
// metadata.deletionTimestamp (see Delete): "orphan" releases the dependents,
// "foregroundDeletion" deletes them before the owner, otherwise the owner goes
// at once and its dependents follow (background).
type GarbageCollector struct {
	*Controller
	st  *store.Store
	inf *Informers
	res map[string]store.Resource
}

// gcKinds are the kinds the collector watches: every kind but Events (which
// expire) and Namespaces (the namespace controller's).
func gcKinds() []store.Resource {
	var out []store.Resource
	for _, r := range store.Resources() {
		if r.Plural != "events" && r.Plural != "namespaces" {
			out = append(out, r)
		}
	}
	return out
}

// NewGarbageCollector returns the collector, registered on the informers.
func NewGarbageCollector(st *store.Store, inf *Informers, opts QueueOptions, log *slog.Logger) *GarbageCollector {
	g := &GarbageCollector{st: st, inf: inf, res: map[string]store.Resource{}}
	g.Controller = NewController("garbage-collector", g, opts, log)
	for _, r := range gcKinds() {
		g.res[r.GroupResource()] = r
		gr := r.GroupResource()
		inf.For(r).AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { g.changed(gr, obj) },
			UpdateFunc: func(_, cur any) {
				g.changed(gr, cur)
				if m, ok := cur.(metav1.Object); ok && m.GetDeletionTimestamp() != nil {
					g.enqueueDependents(m.GetUID())
				}
			},
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				if m, ok := obj.(metav1.Object); ok {
					g.enqueueDependents(m.GetUID())
					g.enqueueOwners(m)
				}
			},
		})
	}
	return g
}

func gcKey(groupResource, namespace, name string) string {
	if namespace == "" {
		return groupResource + "|" + name
	}
	return groupResource + "|" + namespace + "/" + name
}

func (g *GarbageCollector) changed(gr string, obj any) {
	m, ok := obj.(metav1.Object)
	if ok && (len(m.GetOwnerReferences()) > 0 || m.GetDeletionTimestamp() != nil) {
		g.Enqueue(gcKey(gr, m.GetNamespace(), m.GetName()))
	}
}

// enqueueDependents queues every cached object that names uid as an owner.
func (g *GarbageCollector) enqueueDependents(uid any) {
	for gr, r := range g.res {
		for _, d := range ByIndex[store.Object](g.inf.For(r), IndexOwner, fmt.Sprint(uid)) {
			g.Enqueue(gcKey(gr, d.GetNamespace(), d.GetName()))
		}
	}
}

// enqueueOwners queues the owners of a deleted object: one waiting for its
// dependents to go (foreground) looks again.
func (g *GarbageCollector) enqueueOwners(m metav1.Object) {
	for _, ref := range m.GetOwnerReferences() {
		r, ns, ok := ownerResource(ref, m.GetNamespace())
		if ok {
			g.Enqueue(gcKey(r.GroupResource(), ns, ref.Name))
		}
	}
}

func ownerResource(ref metav1.OwnerReference, namespace string) (store.Resource, string, bool) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return store.Resource{}, "", false
	}
	r, err := store.ResourceFor(gv.WithKind(ref.Kind))
	if err != nil {
		return store.Resource{}, "", false
	}
	if !r.Namespaced {
		namespace = ""
	}
	return r, namespace, true
}

// Reconcile looks at one object: finishes its requested deletion, or
// collects it when all its owners are gone, or drops references to owners
// that are gone.
func (g *GarbageCollector) Reconcile(ctx context.Context, key string) (Result, error) {
	gr, objKey, ok := strings.Cut(key, "|")
	r, known := g.res[gr]
	if !ok || !known {
		return Result{}, Terminal(fmt.Errorf("garbage collector: bad key %q", key))
	}
	inf := g.inf.For(r)
	if !inf.HasSynced() {
		return Result{}, fmt.Errorf("cache of %s not synced yet", gr)
	}
	it, exists, _ := inf.GetIndexer().GetByKey(objKey)
	if !exists {
		return Result{}, nil
	}
	obj := it.(store.Object)
	if obj.GetDeletionTimestamp() != nil {
		return Result{}, g.finishDeletion(ctx, r, obj)
	}
	return Result{}, g.collect(ctx, r, obj)
}

// collect deletes obj when every owner is gone, or removes references to the
// owners that are gone.
func (g *GarbageCollector) collect(ctx context.Context, r store.Resource, obj store.Object) error {
	refs := obj.GetOwnerReferences()
	if len(refs) == 0 {
		return nil
	}
	var keep []metav1.OwnerReference
	for _, ref := range refs {
		exists, err := g.ownerExists(ctx, ref, obj.GetNamespace())
		if err != nil {
			return err
		}
		if exists {
			keep = append(keep, ref)
		}
	}
	switch {
	case len(keep) == len(refs):
		return nil
	case len(keep) == 0:
		return deleteObject(ctx, g.st, r, obj)
	default:
		cp := obj.DeepCopyObject().(store.Object)
		cp.SetOwnerReferences(keep)
		return ignoreNotFound(g.st.Update(ctx, cp))
	}
}

// ownerExists answers from the cache when it can; a miss is confirmed with a
// read from etcd, so an owner created an instant ago is never taken as gone.
func (g *GarbageCollector) ownerExists(ctx context.Context, ref metav1.OwnerReference, namespace string) (bool, error) {
	r, ns, ok := ownerResource(ref, namespace)
	if !ok {
		return true, nil // a kind we do not know: leave it alone
	}
	if o, ok := GetCached[store.Object](g.inf.For(r), ns, ref.Name); ok && o.GetUID() == ref.UID {
		return true, nil
	}
	live, err := r.New()
	if err != nil {
		return true, nil
	}
	if err := g.st.Get(ctx, ns, ref.Name, live); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return live.GetUID() == ref.UID, nil
}

// finishDeletion carries out a deletion requested with deletionTimestamp.
func (g *GarbageCollector) finishDeletion(ctx context.Context, r store.Resource, obj store.Object) error {
	fins := obj.GetFinalizers()
	deps := g.dependents(obj.GetUID())
	switch {
	case slices.Contains(fins, metav1.FinalizerOrphanDependents):
		for _, d := range deps {
			cp := d.obj.DeepCopyObject().(store.Object)
			cp.SetOwnerReferences(slices.DeleteFunc(cp.GetOwnerReferences(), func(ref metav1.OwnerReference) bool { return ref.UID == obj.GetUID() }))
			if err := ignoreNotFound(g.st.Update(ctx, cp)); err != nil {
				return fmt.Errorf("orphan %s %s: %w", d.res, cp.GetName(), err)
			}
		}
		return g.dropFinalizer(ctx, obj, metav1.FinalizerOrphanDependents)
	case slices.Contains(fins, metav1.FinalizerDeleteDependents):
		for _, d := range deps {
			if err := deleteObject(ctx, g.st, d.res, d.obj); err != nil {
				return err
			}
		}
		if len(deps) > 0 {
			return nil // their deletion events queue the owner again
		}
		return g.dropFinalizer(ctx, obj, metav1.FinalizerDeleteDependents)
	case len(fins) == 0:
		if g.agentFinishes(obj) {
			return nil
		}
		return deleteObject(ctx, g.st, r, obj)
	}
	return nil // finalizers of someone else's: theirs to remove
}

// agentFinishes reports whether a pod marked for deletion is its node
// agent's to remove: bound to a node that exists, and not finished. The
// agent stops its containers, then deletes it; until then a pod of the same
// name must not start anywhere. The node lifecycle controller deletes the
// pods of a node that is deleted.
func (g *GarbageCollector) agentFinishes(obj store.Object) bool {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	_, exists := GetCached[*corev1.Node](g.inf.For(store.MustResource("nodes")), "", p.Spec.NodeName)
	return exists
}

type dependent struct {
	res store.Resource
	obj store.Object
}

func (g *GarbageCollector) dependents(uid any) []dependent {
	var out []dependent
	for _, r := range g.res {
		for _, d := range ByIndex[store.Object](g.inf.For(r), IndexOwner, fmt.Sprint(uid)) {
			out = append(out, dependent{r, d})
		}
	}
	return out
}

func (g *GarbageCollector) dropFinalizer(ctx context.Context, obj store.Object, fin string) error {
	cp := obj.DeepCopyObject().(store.Object)
	cp.SetFinalizers(slices.DeleteFunc(cp.GetFinalizers(), func(f string) bool { return f == fin }))
	return ignoreNotFound(g.st.Update(ctx, cp))
}

// deleteObject deletes exactly this object (uid precondition): a newer one
// under the same name is left alone. ErrConflict (it changed, or was replaced,
// while being deleted) is returned for the caller to retry from fresh state.
func deleteObject(ctx context.Context, st *store.Store, r store.Resource, obj store.Object) error {
	if _, ok := obj.(*corev1.PersistentVolumeClaim); ok && slices.Contains(obj.GetFinalizers(), pvcProtectionFinalizer) {
		// A claim is deleted as the Kubernetes API deletes it: marked, so
		// that its protection holds it while a pod uses it (the claims of a
		// StatefulSet deleted with its pods, whenDeleted: Delete).
		return ignoreNotFound(markDeleted(ctx, st, r, obj, ""))
	}
	uid := obj.GetUID()
	err := st.Delete(ctx, r, obj.GetNamespace(), obj.GetName(), &metav1.Preconditions{UID: &uid})
	return ignoreNotFound(err)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
