package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
	schedhelper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/keelson/keelson/store"
)

var daemonSetGVK = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// daemonTolerations are the tolerations Kubernetes adds to every daemon
// pod: a daemon keeps running on a node that is not ready, unreachable,
// under pressure or cordoned.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// hostNetworkToleration is added to daemon pods on the host's network.
var hostNetworkToleration = corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// DaemonSetController runs one pod of each DaemonSet on every node its
// pods may run on: the node selector and required node affinity match,
// and every NoSchedule or NoExecute taint is tolerated (with the
// tolerations Kubernetes adds to daemon pods). It binds the pods itself,
// as the node's own, and updates them by RollingUpdate (maxUnavailable,
// maxSurge) or OnDelete.
type DaemonSetController struct {
	*Controller
	st    *store.Store
	dsets cache.SharedIndexInformer
	nodes cache.SharedIndexInformer
	pods  cache.SharedIndexInformer
	exp   *expectations
	rec   *Recorder
	now   func() time.Time
	// backoff delays the replacement of a node's failed daemon pods: a pod
	// the node refuses at once would otherwise be made again at once, for
	// ever.
	backoff podBackoff
}

// podBackoff is a delay per key that doubles with each failure from 1 s up
// to 15 min, and starts over after a quiet spell of twice that.
type podBackoff struct {
	mu sync.Mutex
	m  map[string]*backoffEntry
}

type backoffEntry struct {
	delay time.Duration
	until time.Time
}

const (
	podBackoffBase = time.Second
	podBackoffMax  = 15 * time.Minute
)

func (b *podBackoff) failed(key string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*backoffEntry{}
	}
	e := b.m[key]
	switch {
	case e == nil || now.Sub(e.until) > 2*podBackoffMax:
		e = &backoffEntry{delay: podBackoffBase}
		b.m[key] = e
	default:
		e.delay = min(2*e.delay, podBackoffMax)
	}
	e.until = now.Add(e.delay)
}

// wait is how long key still waits, 0 when it does not.
func (b *podBackoff) wait(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.m[key]; e != nil && e.until.After(now) {
		return e.until.Sub(now)
	}
	return 0
}

// NewDaemonSetController returns the DaemonSet controller, registered on
// the informers.
func NewDaemonSetController(st *store.Store, inf *Informers, rec *Recorder, opts QueueOptions, log *slog.Logger) *DaemonSetController {
	c := &DaemonSetController{
		st: st, dsets: inf.For(store.MustResource("daemonsets.apps")), nodes: inf.For(store.MustResource("nodes")),
		pods: inf.For(store.MustResource("pods")), exp: newExpectations(), rec: rec, now: time.Now,
	}
	c.Controller = NewController("daemonset", c, opts, log)
	c.dsets.AddEventHandler(c.Handler(SelfKeys))
	all := func(any) {
		for _, o := range c.dsets.GetIndexer().List() {
			c.EnqueueObject(o)
		}
	}
	c.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: all,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*corev1.Node), cur.(*corev1.Node)
			if !equality.Semantic.DeepEqual(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) ||
				o.Spec.Unschedulable != n.Spec.Unschedulable {
				all(cur)
			}
		},
		DeleteFunc: all,
	})
	onPod := func(obj any, created, deleted bool) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		ref := controllerOf(p, daemonSetGVK)
		if ref == nil {
			return
		}
		key := p.Namespace + "/" + ref.Name
		if created {
			c.exp.creationObserved(key)
		}
		if deleted {
			c.exp.deletionObserved(key, p.UID)
		}
		c.Enqueue(key)
	}
	c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { onPod(obj, true, false) },
		UpdateFunc: func(_, cur any) { onPod(cur, false, false) },
		DeleteFunc: func(obj any) { onPod(obj, false, true) },
	})
	return c
}

// Reconcile brings one DaemonSet's pods to one per eligible node, rolls
// them to its template, and writes its status.
func (c *DaemonSetController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.dsets.GetIndexer().GetByKey(key)
	if !ok {
		c.exp.forget(key)
		return Result{}, nil
	}
	ds := obj.(*appsv1.DaemonSet)
	hash := templateHash(&ds.Spec.Template, ds.Status.CollisionCount) // the controller-revision-hash label
	var nodes []*corev1.Node
	for _, o := range c.nodes.GetIndexer().List() {
		nodes = append(nodes, o.(*corev1.Node))
	}
	slices.SortFunc(nodes, func(a, b *corev1.Node) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	byNode := map[string][]*corev1.Pod{}
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexOwner, string(ds.UID)) {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == ds.UID && p.DeletionTimestamp == nil && !c.exp.deleting(key, p.UID) {
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
	}
	eligible, keep := eligibleNodes(ds, nodes)
	var err error
	var wait time.Duration
	if ds.DeletionTimestamp == nil && c.exp.satisfied(key) {
		wait, err = c.manage(ctx, key, ds, hash, nodes, eligible, keep, byNode)
	}
	status := c.status(ds, hash, nodes, eligible, byNode)
	if !equality.Semantic.DeepEqual(status, ds.Status) {
		out := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ds.Namespace, Name: ds.Name, ResourceVersion: ds.ResourceVersion}, Status: status}
		if werr := c.st.UpdateStatus(ctx, out); werr != nil && !errors.Is(werr, store.ErrNotFound) {
			return Result{}, errors.Join(err, fmt.Errorf("daemonset %s: write status: %w", key, werr))
		}
	}
	if w := c.availableIn(ds, byNode); w > 0 && (wait == 0 || w < wait) {
		wait = w
	}
	return Result{RequeueAfter: wait}, err
}

// eligibleNodes says of each node whether a new pod of ds belongs there
// (its node selector and required node affinity match the node, and it
// tolerates every NoSchedule and NoExecute taint of the node), and whether
// a pod there keeps running (the same, with NoExecute taints only: a
// NoSchedule taint keeps new pods off and leaves running ones), as
// Kubernetes decides.
func eligibleNodes(ds *appsv1.DaemonSet, nodes []*corev1.Node) (run, keep map[string]bool) {
	pod := &corev1.Pod{Spec: *daemonSpec(ds)}
	aff := nodeaffinity.GetRequiredNodeAffinity(pod)
	run, keep = make(map[string]bool, len(nodes)), make(map[string]bool, len(nodes))
	noExecute := func(t *corev1.Taint) bool { return t.Effect == corev1.TaintEffectNoExecute }
	for _, n := range nodes {
		if ok, _ := aff.Match(n); !ok {
			continue
		}
		_, untolerated := schedhelper.FindMatchingUntoleratedTaint(klogBackground, n.Spec.Taints, pod.Spec.Tolerations, hardTaint, false)
		run[n.Name] = !untolerated
		_, evicted := schedhelper.FindMatchingUntoleratedTaint(klogBackground, n.Spec.Taints, pod.Spec.Tolerations, noExecute, false)
		keep[n.Name] = !evicted
	}
	return run, keep
}

// daemonSpec is the pod spec of ds's template with the daemon
// tolerations, for any node.
func daemonSpec(ds *appsv1.DaemonSet) *corev1.PodSpec {
	spec := ds.Spec.Template.Spec.DeepCopy()
	for _, tol := range daemonTolerations {
		if !slices.ContainsFunc(spec.Tolerations, func(x corev1.Toleration) bool { return x.MatchToleration(&tol) }) {
			spec.Tolerations = append(spec.Tolerations, tol)
		}
	}
	if spec.HostNetwork {
		spec.Tolerations = append(spec.Tolerations, hostNetworkToleration)
	}
	return spec
}

// manage creates the pods nodes lack, deletes those on nodes that no
// longer take them (and doubles, and failed ones), and rolls old pods to
// the template.
func (c *DaemonSetController) manage(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, nodes []*corev1.Node, eligible, keep map[string]bool, byNode map[string][]*corev1.Pod) (time.Duration, error) {
	var create []*corev1.Pod
	var del []*corev1.Pod
	var wait time.Duration
	now := c.now()
	spec := daemonSpec(ds)
	for _, n := range nodes {
		run := eligible[n.Name]
		pods := byNode[n.Name]
		var live []*corev1.Pod
		failed := false
		for _, p := range pods {
			if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
				del = append(del, p) // replaced, after a backoff, as Kubernetes does
				failed = failed || p.Status.Phase == corev1.PodFailed
				continue
			}
			live = append(live, p)
		}
		backoffKey := key + "/" + n.Name
		if failed {
			c.backoff.failed(backoffKey, now)
		}
		switch {
		case !run && !keep[n.Name]:
			del = append(del, live...)
		case !run:
			// A NoSchedule taint: running pods stay, none is made.
		case len(live) == 0:
			if w := c.backoff.wait(backoffKey, now); w > 0 {
				if wait == 0 || w < wait {
					wait = w
				}
				continue
			}
			create = append(create, c.newPod(ds, spec, hash, n.Name))
		case len(live) > 1:
			// Keep the one of the template, else the oldest; with a
			// surge under way, one old and one new are both kept.
			slices.SortFunc(live, func(a, b *corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
			keepNew, keepOld := -1, -1
			for i, p := range live {
				if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
					if keepNew < 0 {
						keepNew = i
					}
				} else if keepOld < 0 {
					keepOld = i
				}
			}
			for i, p := range live {
				if i != keepNew && i != keepOld {
					del = append(del, p)
				}
			}
		}
	}
	for name, pods := range byNode {
		if _, known := eligible[name]; !known {
			del = append(del, pods...) // the node is gone
		}
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		rc, rd := c.rollingUpdate(ds, spec, hash, nodes, eligible, byNode, now)
		create = append(create, rc...)
		del = append(del, rd...)
	}
	w := podWriter{c.st, c.exp, c.rec}
	return wait, errors.Join(w.delete(ctx, key, ds, del, ""), w.create(ctx, key, ds, create))
}

// rollingUpdate returns the pods to create and delete for one step of a
// rolling update: with maxSurge, a new pod beside the old on up to
// maxSurge nodes, the old deleted once the new is available; without, the
// old pods of up to maxUnavailable nodes deleted, counting nodes whose pod
// is not available yet.
func (c *DaemonSetController) rollingUpdate(ds *appsv1.DaemonSet, spec *corev1.PodSpec, hash string, nodes []*corev1.Node, eligible map[string]bool, byNode map[string][]*corev1.Pod, now time.Time) (create, del []*corev1.Pod) {
	desired := 0
	for _, n := range nodes {
		if eligible[n.Name] {
			desired++
		}
	}
	maxUnavailable, maxSurge := rollingLimits(ds, desired)
	unavailable, surging := 0, 0
	type nodeState struct {
		name     string
		old, cur *corev1.Pod
	}
	var states []nodeState
	for _, n := range nodes {
		if !eligible[n.Name] {
			continue
		}
		s := nodeState{name: n.Name}
		for _, p := range byNode[n.Name] {
			if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
				continue
			}
			if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
				s.cur = p
			} else {
				s.old = p
			}
		}
		switch {
		case s.cur != nil && s.old != nil:
			surging++
		case s.cur == nil && s.old == nil:
			unavailable++
		default:
			if p := cmpOr(s.cur, s.old); !podAvailableNow(p, ds.Spec.MinReadySeconds, now) {
				unavailable++
			}
		}
		states = append(states, s)
	}
	for _, s := range states {
		switch {
		case s.cur != nil && s.old != nil:
			// A surge: the old goes once the new is available.
			if podAvailableNow(s.cur, ds.Spec.MinReadySeconds, now) {
				del = append(del, s.old)
			}
		case s.old != nil && maxSurge > 0:
			if surging < maxSurge {
				create = append(create, c.newPod(ds, spec, hash, s.name))
				surging++
			}
		case s.old != nil:
			// An old pod not available is replaced at once; an available
			// one when the budget allows.
			if !podAvailableNow(s.old, ds.Spec.MinReadySeconds, now) {
				del = append(del, s.old)
			} else if unavailable < maxUnavailable {
				del = append(del, s.old)
				unavailable++
			}
		}
	}
	return create, del
}

func cmpOr(a, b *corev1.Pod) *corev1.Pod {
	if a != nil {
		return a
	}
	return b
}

func podAvailableNow(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	ok, _ := podAvailable(p, minReadySeconds, now)
	return ok
}

// rollingLimits resolves maxUnavailable (default 1) and maxSurge (default 0)
// against the desired count, as Kubernetes does: a surge rounds up, the
// unavailable budget down, and at least one of them is 1.
func rollingLimits(ds *appsv1.DaemonSet, desired int) (maxUnavailable, maxSurge int) {
	mu := intstr.FromInt32(1)
	ms := intstr.FromInt32(0)
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		if ru.MaxUnavailable != nil {
			mu = *ru.MaxUnavailable
		}
		if ru.MaxSurge != nil {
			ms = *ru.MaxSurge
		}
	}
	surge, _ := intstr.GetScaledValueFromIntOrPercent(&ms, desired, true)
	unavail, _ := intstr.GetScaledValueFromIntOrPercent(&mu, desired, false)
	if surge == 0 && unavail == 0 {
		unavail = 1
	}
	return unavail, surge
}

// newPod is the pod of ds for node: the template, the hash of it, the
// daemon tolerations, bound to the node (and with the node affinity that
// says so, as Kubernetes writes it).
func (c *DaemonSetController) newPod(ds *appsv1.DaemonSet, daemon *corev1.PodSpec, hash, node string) *corev1.Pod {
	t := &ds.Spec.Template
	lbls := labels.Merge(t.Labels, map[string]string{appsv1.DefaultDaemonSetUniqueLabelKey: hash})
	spec := *daemon.DeepCopy()
	spec.Affinity = withNodeName(spec.Affinity, node)
	spec.NodeName = node
	prefix := ds.Name + "-"
	if len(prefix) > 58 {
		prefix = prefix[:58]
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ds.Namespace, Name: prefix + randSuffix(), GenerateName: prefix,
			Labels: lbls, Annotations: maps.Clone(t.Annotations), Finalizers: slices.Clone(t.Finalizers),
			OwnerReferences: []metav1.OwnerReference{ownerRef(ds, daemonSetGVK)},
		},
		Spec: spec,
	}
}

// withNodeName adds to every required node selector term a match of the
// node's name, as Kubernetes does for daemon pods.
func withNodeName(a *corev1.Affinity, node string) *corev1.Affinity {
	match := corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}
	if a == nil {
		a = &corev1.Affinity{}
	}
	if a.NodeAffinity == nil {
		a.NodeAffinity = &corev1.NodeAffinity{}
	}
	req := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if req == nil || len(req.NodeSelectorTerms) == 0 {
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{match}}},
		}
		return a
	}
	for i := range req.NodeSelectorTerms {
		req.NodeSelectorTerms[i].MatchFields = append(req.NodeSelectorTerms[i].MatchFields, match)
	}
	return a
}

// status counts as kubectl shows them: desired, current, ready, up-to-date,
// available, and the pods on nodes that should not run one.
func (c *DaemonSetController) status(ds *appsv1.DaemonSet, hash string, nodes []*corev1.Node, eligible map[string]bool, byNode map[string][]*corev1.Pod) appsv1.DaemonSetStatus {
	now := c.now()
	s := appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, CollisionCount: ds.Status.CollisionCount, Conditions: ds.Status.Conditions}
	for _, n := range nodes {
		var live []*corev1.Pod
		for _, p := range byNode[n.Name] {
			if p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
				live = append(live, p)
			}
		}
		switch {
		case eligible[n.Name]:
			s.DesiredNumberScheduled++
			if len(live) == 0 {
				s.NumberUnavailable++
				continue
			}
			s.CurrentNumberScheduled++
			p := live[0]
			for _, q := range live {
				if q.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
					p = q
				}
			}
			if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
				s.UpdatedNumberScheduled++
			}
			if podReady(p) {
				s.NumberReady++
			}
			if podAvailableNow(p, ds.Spec.MinReadySeconds, now) {
				s.NumberAvailable++
			} else {
				s.NumberUnavailable++
			}
		case len(live) > 0:
			s.NumberMisscheduled++
		}
	}
	return s
}

// availableIn is how long until a ready pod of ds becomes available
// (minReadySeconds), 0 when none waits.
func (c *DaemonSetController) availableIn(ds *appsv1.DaemonSet, byNode map[string][]*corev1.Pod) time.Duration {
	var wait time.Duration
	now := c.now()
	for _, pods := range byNode {
		for _, p := range pods {
			if _, w := podAvailable(p, ds.Spec.MinReadySeconds, now); w > 0 && (wait == 0 || w < wait) {
				wait = w
			}
		}
	}
	return wait
}
