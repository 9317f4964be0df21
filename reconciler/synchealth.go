package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/health"
	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/store"
)

// maxUnhealthyListed bounds SyncHealth.Objects.
const maxUnhealthyListed = 50

// SyncHealthController rolls the health of every object a Git source applied
// up into the source's Sync: status.health (the worst object's status and
// message, and the objects that are not Healthy) and the Healthy condition
// beside gitsync's Ready, True only when the applied revision is healthy.
// gitsync owns the rest of the Sync; both write with compare-and-swap.
type SyncHealthController struct {
	*Controller
	st      *store.Store
	syncs   cache.SharedIndexInformer
	watched map[string]cache.SharedIndexInformer // by group-resource
	now     func() time.Time
	mu      sync.Mutex
	lists   map[string]*listed // by sync name
}

// NewSyncHealthController returns the controller, registered on the informers.
func NewSyncHealthController(st *store.Store, inf *Informers, opts QueueOptions, log *slog.Logger) *SyncHealthController {
	c := &SyncHealthController{st: st, syncs: inf.For(store.MustResource("syncs.keelson.dev")),
		watched: map[string]cache.SharedIndexInformer{}, now: time.Now, lists: map[string]*listed{}}
	c.Controller = NewController("sync-health", c, opts, log)
	c.syncs.AddEventHandler(c.Handler(SelfKeys))
	for _, gr := range health.Kinds {
		i := inf.For(store.MustResource(gr))
		i.AddEventHandler(c.Handler(sourceKeys))
		c.watched[gr] = i
	}
	return c
}

// sourceKeys enqueues the Sync an object from Git belongs to.
func sourceKeys(obj any) []string {
	m, err := metaOf(obj)
	if err != nil {
		return nil
	}
	if s := m.GetLabels()[keelsonv1alpha1.LabelSource]; s != "" {
		return []string{s}
	}
	return nil
}

// Reconcile recomputes the health of one Sync's inventory and writes it when
// it changed.
func (c *SyncHealthController) Reconcile(ctx context.Context, name string) (Result, error) {
	s, ok := GetCached[*keelsonv1alpha1.Sync](c.syncs, "", name)
	if !ok || s.Status.LastAppliedRevision == "" {
		return Result{}, nil
	}
	h, err := c.rollUp(ctx, s)
	if err != nil {
		return Result{}, err
	}
	h.Revision = s.Status.LastAppliedRevision
	if sameHealth(s.Status.Health, h) && healthyCondition(s) == conditionFor(h).Status {
		return Result{}, nil
	}
	fresh := &keelsonv1alpha1.Sync{}
	if err := c.st.Get(ctx, "", name, fresh); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Result{}, nil
		}
		return Result{}, err
	}
	if fresh.Status.LastAppliedRevision != h.Revision {
		return Result{RequeueAfter: time.Second}, nil // a new revision landed meanwhile
	}
	h.LastTransitionTime = metav1.NewTime(c.now())
	if old := fresh.Status.Health; old != nil && old.Status == h.Status {
		h.LastTransitionTime = old.LastTransitionTime
	}
	fresh.Status.Health = h
	cond := conditionFor(h)
	cond.ObservedGeneration = fresh.Generation
	meta.SetStatusCondition(&fresh.Status.Conditions, cond)
	// A conflict (gitsync wrote meanwhile) retries from the fresh cache.
	return Result{}, c.st.UpdateStatus(ctx, fresh)
}

// rollUp computes the health of the inventory: kinds with a rule
// (health.Kinds) from the informers' caches, the others by one labelled
// list per kind, made once for each version of the Sync.
func (c *SyncHealthController) rollUp(ctx context.Context, s *keelsonv1alpha1.Sync) (*keelsonv1alpha1.SyncHealth, error) {
	name := s.Name
	out := &keelsonv1alpha1.SyncHealth{Status: string(health.Healthy)}
	worst := health.Health{Status: health.Healthy}
	listed := c.listedFor(s)
	var hc health.Context
	if inf, ok := c.watched["ingressclasses.networking.k8s.io"]; ok {
		hc.IngressClasses = ingressclass.FromStore(inf.GetStore())
	}
	for _, ref := range s.Status.Inventory {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return nil, err
		}
		r, err := store.ResourceFor(gv.WithKind(ref.Kind))
		if err != nil {
			return nil, err
		}
		key := ref.Name
		if ref.Namespace != "" {
			key = ref.Namespace + "/" + ref.Name
		}
		var h health.Health
		if inf, ok := c.watched[r.GroupResource()]; ok {
			var obj store.Object
			if it, ok, _ := inf.GetIndexer().GetByKey(key); ok {
				obj, _ = it.(store.Object)
			}
			h = hc.OfKind(r.GVK.GroupKind(), obj)
		} else {
			present, ok := listed.get(r.GroupResource())
			if !ok {
				if present, err = c.present(ctx, r, name); err != nil {
					return nil, err
				}
				listed.put(r.GroupResource(), present)
			}
			h = health.Present(r.GVK.GroupKind())
			if !present[key] {
				h = health.OfKind(r.GVK.GroupKind(), nil)
			}
		}
		if h.Status == health.Healthy {
			continue
		}
		if health.Worse(h.Status, worst.Status) {
			worst = h
		}
		if len(out.Objects) < maxUnhealthyListed {
			out.Objects = append(out.Objects, keelsonv1alpha1.ObjectHealth{ObjectRef: ref, Status: string(h.Status), Message: h.Message})
		}
	}
	out.Status = string(worst.Status)
	if worst.Status != health.Healthy {
		out.Message = worst.Message
		for _, o := range out.Objects {
			if o.Status == out.Status {
				out.Message = fmt.Sprintf("%s %s: %s", o.Kind, joinName(o.Namespace, o.Name), o.Message)
				break
			}
		}
	}
	return out, nil
}

// listed remembers, for one version of a Sync, which of its objects of the
// kinds without a health rule exist: workload events, which come often, do
// not list thousands of ConfigMaps again; a new write of the Sync (every
// sync attempt) does.
type listed struct {
	mu    sync.Mutex
	rv    string
	kinds map[string]map[string]bool // group-resource → namespace/name present
}

func (l *listed) get(gr string) (map[string]bool, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.kinds[gr]
	return p, ok
}

func (l *listed) put(gr string, present map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kinds[gr] = present
}

// listedFor returns what is remembered for this version of s, forgetting
// older versions.
func (c *SyncHealthController) listedFor(s *keelsonv1alpha1.Sync) *listed {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lists[s.Name]
	if l == nil || l.rv != s.ResourceVersion {
		l = &listed{rv: s.ResourceVersion, kinds: map[string]map[string]bool{}}
		c.lists[s.Name] = l
	}
	return l
}

// present lists the objects of r labelled as the source's.
func (c *SyncHealthController) present(ctx context.Context, r store.Resource, name string) (map[string]bool, error) {
	l, err := c.st.List(ctx, r, store.ListOptions{Selector: labels.SelectorFromSet(labels.Set{keelsonv1alpha1.LabelSource: name}), Shared: true})
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(l.Items))
	for _, o := range l.Items {
		out[joinName(o.GetNamespace(), o.GetName())] = true
	}
	return out, nil
}

func joinName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// conditionFor is the Healthy condition of a health roll-up.
func conditionFor(h *keelsonv1alpha1.SyncHealth) metav1.Condition {
	c := metav1.Condition{Type: keelsonv1alpha1.ConditionHealthy, Status: metav1.ConditionFalse, Reason: h.Status, Message: h.Message}
	if h.Status == string(health.Healthy) {
		c.Status, c.Message = metav1.ConditionTrue, "every object of revision "+shortRev(h.Revision)+" is healthy"
	}
	return c
}

func healthyCondition(s *keelsonv1alpha1.Sync) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(s.Status.Conditions, keelsonv1alpha1.ConditionHealthy); c != nil {
		return c.Status
	}
	return ""
}

// sameHealth compares two roll-ups, ignoring when they were made.
func sameHealth(old, cur *keelsonv1alpha1.SyncHealth) bool {
	return old != nil && old.Status == cur.Status && old.Message == cur.Message && old.Revision == cur.Revision &&
		slices.Equal(old.Objects, cur.Objects)
}

func shortRev(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}
