package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/store"
)

// SchedulerOptions tune the scheduler.
type SchedulerOptions struct {
	// Disabled leaves pods unscheduled, for a control plane where another
	// scheduler binds every pod (tests with fake nodes).
	Disabled bool
	// Names are the spec.schedulerName values this scheduler takes; empty is
	// always taken. Default "default-scheduler" and "keelson".
	Names []string
	// Workers bind in parallel; decisions are taken one at a time. Default
	// 256: a binding waits on etcd far longer than a decision takes, and
	// the bindings waiting at once share transactions.
	Workers int
	// RetryDelay gathers the cluster changes that may let unschedulable pods
	// fit before they are tried again. Default 1s.
	RetryDelay time.Duration
	// RetryPeriod tries unschedulable pods again even when nothing seemed to
	// change. Default 5 minutes, as kube-scheduler.
	RetryPeriod time.Duration
}

func (o SchedulerOptions) withDefaults() SchedulerOptions {
	if len(o.Names) == 0 {
		o.Names = []string{corev1.DefaultSchedulerName, "keelson"}
	}
	if o.Workers <= 0 {
		o.Workers = 256
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = 5 * time.Minute
	}
	return o
}

// bindWriters is how many binding transactions may be in flight at once.
const bindWriters = 4

// Scheduler binds pods that have no node to a node that fits them: it filters
// the nodes (readiness, cordon, taints, node affinity, host ports, resources),
// scores those that pass (free and balanced resources, preferred affinity,
// PreferNoSchedule taints, spreading of a controller's pods over nodes and
// zones, image locality) and writes spec.nodeName with PodScheduled=True by
// compare-and-swap. A pod that fits nowhere gets PodScheduled=False, reason
// Unschedulable, with the reasons per node, and is tried again when nodes or
// bound pods change. Decisions come from an in-memory snapshot of the nodes
// and bound pods that the informers keep current.
type Scheduler struct {
	*Controller
	st      *store.Store
	pods    cache.SharedIndexInformer
	claims  cache.SharedIndexInformer
	volumes cache.SharedIndexInformer
	classes cache.SharedIndexInformer
	cache   *schedCache
	rec     *Recorder
	bnd     *binder
	opts    SchedulerOptions
	names   map[string]bool

	rndMu sync.Mutex
	rnd   *rand.Rand

	waitMu  sync.Mutex
	waiting map[string]bool // unschedulable pods, by key
	timer   *time.Timer     // pending retry of the waiting pods
}

// NewScheduler returns the scheduler, registered on the informers.
func NewScheduler(st *store.Store, inf *Informers, rec *Recorder, opts SchedulerOptions, queue QueueOptions, log *slog.Logger) *Scheduler {
	opts = opts.withDefaults()
	s := &Scheduler{
		st: st, pods: inf.For(store.MustResource("pods")), claims: inf.For(store.MustResource("persistentvolumeclaims")),
		volumes: inf.For(store.MustResource("persistentvolumes")), classes: inf.For(store.MustResource("storageclasses.storage.k8s.io")),
		cache: newSchedCache(), rec: rec, opts: opts, bnd: newBinder(st),
		names: map[string]bool{"": true}, rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		waiting: map[string]bool{},
	}
	for _, n := range opts.Names {
		s.names[n] = true
	}
	namespaces := inf.For(store.MustResource("namespaces"))
	s.cache.nsLabels = func(name string) labels.Set {
		if ns, ok := GetCached[*corev1.Namespace](namespaces, "", name); ok {
			return ns.Labels
		}
		return nil
	}
	queue.Workers = opts.Workers
	s.Controller = NewController("scheduler", s, queue, log)
	inf.For(store.MustResource("nodes")).AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onNode(nil, obj) },
		UpdateFunc: func(old, cur any) { s.onNode(old, cur) },
		DeleteFunc: func(obj any) { s.onNode(obj, nil) },
	})
	s.claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.retryWaitingSoon() },
		UpdateFunc: func(any, any) { s.retryWaitingSoon() },
	})
	s.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onPod(nil, obj.(*corev1.Pod)) },
		UpdateFunc: func(old, cur any) { s.onPod(old.(*corev1.Pod), cur.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				s.onPod(p, nil)
			}
		},
	})
	return s
}

// Run schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	s.bnd.run(ctx, bindWriters)
	go func() {
		t := time.NewTicker(s.opts.RetryPeriod)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.retryWaiting()
			}
		}
	}()
	s.Controller.Run(ctx)
	s.waitMu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.waitMu.Unlock()
}

func (s *Scheduler) onNode(old, cur any) {
	oldN, _ := old.(*corev1.Node)
	if t, ok := old.(cache.DeletedFinalStateUnknown); ok {
		oldN, _ = t.Obj.(*corev1.Node)
	}
	curN, _ := cur.(*corev1.Node)
	switch {
	case curN != nil:
		s.cache.setNode(curN.Name, curN)
		if oldN == nil || nodeChangedForScheduling(oldN, curN) {
			s.retryWaitingSoon()
		}
	case oldN != nil:
		s.cache.setNode(oldN.Name, nil)
	}
}

// nodeChangedForScheduling reports whether a node update can let a waiting
// pod fit: heartbeats and image lists alone cannot.
func nodeChangedForScheduling(old, cur *corev1.Node) bool {
	return !equality.Semantic.DeepEqual(old.Labels, cur.Labels) ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, cur.Spec.Taints) ||
		old.Spec.Unschedulable != cur.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, cur.Status.Allocatable) ||
		nodeReadyStatus(old) != nodeReadyStatus(cur)
}

func nodeReadyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

func (s *Scheduler) onPod(old, cur *corev1.Pod) {
	switch {
	case cur != nil:
		s.cache.setPod(cur.UID, cur)
		if s.wants(cur) && !s.isWaiting(cur) {
			s.EnqueueObject(cur)
		}
		// A pod that stops occupying its node frees room.
		if old != nil && occupies(old) && !occupies(cur) {
			s.retryWaitingSoon()
		}
	case old != nil:
		s.cache.setPod(old.UID, nil)
		key, _ := cache.MetaNamespaceKeyFunc(old)
		s.waitMu.Lock()
		delete(s.waiting, key)
		s.waitMu.Unlock()
		if occupies(old) {
			s.retryWaitingSoon()
		}
	}
}

// isWaiting reports whether the pod is parked as unschedulable: its own
// condition write must not wake it.
func (s *Scheduler) isWaiting(p *corev1.Pod) bool {
	key, _ := cache.MetaNamespaceKeyFunc(p)
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	return s.waiting[key]
}

// wants reports whether the pod is this scheduler's to place.
func (s *Scheduler) wants(p *corev1.Pod) bool {
	return p.Spec.NodeName == "" && p.DeletionTimestamp == nil && s.names[p.Spec.SchedulerName] &&
		p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// retryWaitingSoon tries the unschedulable pods again after RetryDelay,
// gathering every change until then into one retry.
func (s *Scheduler) retryWaitingSoon() {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	if s.timer != nil || len(s.waiting) == 0 {
		return
	}
	s.timer = time.AfterFunc(s.opts.RetryDelay, s.retryWaiting)
}

func (s *Scheduler) retryWaiting() {
	s.waitMu.Lock()
	keys := s.waiting
	s.waiting = map[string]bool{}
	s.timer = nil
	s.waitMu.Unlock()
	for k := range keys {
		s.Enqueue(k)
	}
}

// Reconcile places one pod.
func (s *Scheduler) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := s.pods.GetIndexer().GetByKey(key)
	if !ok {
		return Result{}, nil
	}
	p := obj.(*corev1.Pod)
	if !s.wants(p) || s.cache.placed(p.UID) {
		return Result{}, nil
	}
	vols, err := s.podVolumes(p)
	if err != nil {
		return Result{}, s.unschedulable(ctx, p, err)
	}
	c, err := newCandidate(p)
	if err != nil {
		return Result{}, s.unschedulable(ctx, p, Terminal(err))
	}
	c.volumes = vols
	s.rndMu.Lock()
	node, err := s.cache.schedule(c, s.rnd)
	s.rndMu.Unlock()
	var fe *fitError
	if errors.As(err, &fe) {
		return Result{}, s.unschedulable(ctx, p, fe)
	}
	if len(vols.delayed) > 0 {
		// The node is chosen for the claims that wait for a first
		// consumer; the pod goes there once they are bound.
		s.cache.forget(p.UID)
		return Result{}, s.selectNode(ctx, p, vols.delayed, node)
	}
	if err := s.bind(ctx, p, node); err != nil {
		s.cache.forget(p.UID)
		if errors.Is(err, store.ErrNotFound) {
			return Result{}, nil
		}
		return Result{}, err
	}
	s.rec.Eventf(p, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", p.Namespace, p.Name, node)
	return Result{}, nil
}

// selectNode writes the chosen node on each delayed claim, for its volume
// to be found or provisioned there, and parks the pod until they are
// bound (their updates try it again).
func (s *Scheduler) selectNode(ctx context.Context, p *corev1.Pod, delayed []delayedClaim, node string) error {
	for _, d := range delayed {
		cp := d.pvc.DeepCopy()
		if cp.Annotations == nil {
			cp.Annotations = map[string]string{}
		}
		cp.Annotations[annSelectedNode] = node
		// A claim changed meanwhile (the binder's status, an event) is read
		// again and the pod scheduled again: parked, it would wait for a
		// claim update that has already come.
		if err := s.st.Update(ctx, cp); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("pod %s/%s: select node %s for claim %s: %w", p.Namespace, p.Name, node, d.pvc.Name, err)
		}
	}
	return s.unschedulable(ctx, p, fmt.Errorf("waiting for its persistentvolumeclaims to be bound on node %s, chosen for them", node))
}

// bind writes the node and PodScheduled=True in one compare-and-swap of the
// pod as the scheduler saw it: a pod changed meanwhile is re-read and
// scheduled again.
func (s *Scheduler) bind(ctx context.Context, p *corev1.Pod, node string) error {
	cp := p.DeepCopy()
	cp.Spec.NodeName = node
	setPodCondition(&cp.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue})
	if err := s.bnd.bind(ctx, cp); err != nil {
		return fmt.Errorf("bind pod %s/%s to %s: %w", p.Namespace, p.Name, node, err)
	}
	return nil
}

// unschedulable explains in the pod's PodScheduled condition and an Event why
// no node fits, and parks the pod until the cluster changes.
func (s *Scheduler) unschedulable(ctx context.Context, p *corev1.Pod, why error) error {
	key, _ := cache.MetaNamespaceKeyFunc(p)
	s.waitMu.Lock()
	s.waiting[key] = true
	s.waitMu.Unlock()
	msg := why.Error()
	s.rec.Eventf(p, corev1.EventTypeWarning, "FailedScheduling", "%s", msg)
	cp := p.DeepCopy()
	if !setPodCondition(&cp.Status, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: msg,
	}) {
		return nil
	}
	if err := s.st.UpdateStatus(ctx, cp); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("pod %s/%s status: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// setPodCondition sets a condition, keeping its transition time when the
// status does not change; false when nothing changed.
func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) bool {
	now := metav1.Now()
	c.LastProbeTime = metav1.Time{}
	for i := range st.Conditions {
		old := &st.Conditions[i]
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
			return false
		}
		c.LastTransitionTime = old.LastTransitionTime
		if old.Status != c.Status {
			c.LastTransitionTime = now
		}
		st.Conditions[i] = c
		return true
	}
	c.LastTransitionTime = now
	st.Conditions = append(st.Conditions, c)
	return true
}
