package gitsync

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keelson/keelson/admission"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// quotaWorld is what the quota check knows of the cluster: its objects of
// a kind in a namespace (the store's, or what a plan read), its nodes.
type quotaWorld struct {
	list  func(groupResource, namespace string) ([]store.Object, error)
	nodes func() ([]*corev1.Node, error)
}

// quotaProblem is a quota a revision would break, at the revision's object
// that adds the most to the resource it exceeds.
type quotaProblem struct {
	at  *desired
	msg string
}

// share is what one object of a revision (or the cluster) keeps counted in
// a namespace once its controllers have done their work: itself, and for a
// workload the pods (and claims) it runs, times their number.
type share struct {
	res   store.Resource
	obj   store.Object
	times int64
	from  *desired // the revision's object it comes from; nil for the cluster's
}

var (
	podsRes   = store.MustResource("pods")
	claimsRes = store.MustResource("persistentvolumeclaims")
	quotasRes = store.MustResource("resourcequotas")
	rangesRes = store.MustResource("limitranges")
)

// checkQuotas finds the quotas a revision would break: for each
// ResourceQuota of a namespace the revision changes (the revision's own, or
// the cluster's that the revision keeps), what the namespace would hold once
// applied, Kubernetes counting it: the revision's objects and the pods,
// claims and objects their controllers keep (a Deployment's replicas, a
// StatefulSet's claims, a Job's parallelism, a DaemonSet's nodes), with the
// LimitRanges' defaults, plus what the cluster holds that the revision does
// not make. A resource over its hard limit that the revision raises is a
// problem with the numbers; a namespace already over its quota that the
// revision does not make worse is left as it is, as Kubernetes lets it be.
// old are the objects of the sync now, head the revision's.
func checkQuotas(head map[key]*desired, old map[key]store.Object, w quotaWorld) ([]quotaProblem, error) {
	byNS := map[string]*nsObjects{}
	in := func(ns string) *nsObjects {
		o := byNS[ns]
		if o == nil {
			o = &nsObjects{ns: ns, head: map[key]*desired{}, old: map[key]store.Object{}}
			byNS[ns] = o
		}
		return o
	}
	changed := map[string]bool{}
	for k, d := range head {
		if k.namespace == "" {
			continue
		}
		in(k.namespace).head[k] = d
		if o, ok := old[k]; !ok || !sameSpec(o, d.obj) {
			changed[k.namespace] = true
		}
	}
	for k, o := range old {
		if k.namespace == "" {
			continue
		}
		in(k.namespace).old[k] = o
		if _, ok := head[k]; !ok {
			changed[k.namespace] = true
		}
	}
	var problems []quotaProblem
	for _, ns := range sortedKeys(changed) {
		objs := byNS[ns]
		quotas, err := objs.quotas(w)
		if err != nil || len(quotas) == 0 {
			if err != nil {
				return nil, err
			}
			continue
		}
		more, err := objs.check(quotas, w)
		if err != nil {
			return nil, err
		}
		problems = append(problems, more...)
	}
	return problems, nil
}

// nsObjects are the objects of one namespace in the revision (head) and of
// the sync now (old).
type nsObjects struct {
	ns   string
	head map[key]*desired
	old  map[key]store.Object
}

// ours says whether the revision or the sync has the object: the cluster's
// copy is replaced or removed.
func (in *nsObjects) ours(k key) bool {
	_, a := in.head[k]
	_, b := in.old[k]
	return a || b
}

// sameSpec says whether two versions of an object have the same spec; an
// object without one (a ConfigMap) counts the same whatever it holds.
func sameSpec(a, b store.Object) bool {
	sa, sb := reflect.ValueOf(a).Elem().FieldByName("Spec"), reflect.ValueOf(b).Elem().FieldByName("Spec")
	if !sa.IsValid() || !sb.IsValid() {
		return true
	}
	return equality.Semantic.DeepEqual(sa.Interface(), sb.Interface())
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// quotas are the quotas of the namespace once the revision is applied,
// with where they come from in the revision (nil: the cluster's).
func (in *nsObjects) quotas(w quotaWorld) (map[*corev1.ResourceQuota]*desired, error) {
	out := map[*corev1.ResourceQuota]*desired{}
	cluster, err := w.list(quotasRes.GroupResource(), in.ns)
	if err != nil {
		return nil, err
	}
	for _, o := range cluster {
		if !in.ours(key{quotasRes.GroupResource(), in.ns, o.GetName()}) {
			out[o.(*corev1.ResourceQuota)] = nil
		}
	}
	for _, d := range in.head {
		if q, ok := d.obj.(*corev1.ResourceQuota); ok {
			out[q] = d
		}
	}
	return out, nil
}

// check weighs the namespace before and after the revision against each
// of its quotas.
func (in *nsObjects) check(quotas map[*corev1.ResourceQuota]*desired, w quotaWorld) ([]quotaProblem, error) {
	ns := in.ns
	kinds := map[string]bool{}
	for q := range quotas {
		for k := range admission.Kinds(q.Spec.Hard) {
			kinds[k] = true
		}
	}
	ranges, err := in.ranges(w)
	if err != nil {
		return nil, err
	}
	kept, err := in.kept(kinds, w)
	if err != nil {
		return nil, err
	}
	var before, after []share
	for k, o := range in.old {
		more, err := sharesOf(storeRes(k), o, nil, ranges, w, nil)
		if err != nil {
			return nil, err
		}
		before = append(before, more...)
	}
	for k, d := range in.head {
		more, err := sharesOf(d.res, d.obj, d, ranges, w, in.old[k])
		if err != nil {
			return nil, err
		}
		after = append(after, more...)
	}
	var problems []quotaProblem
	qs := make([]*corev1.ResourceQuota, 0, len(quotas))
	for q := range quotas {
		qs = append(qs, q)
	}
	slices.SortFunc(qs, func(a, b *corev1.ResourceQuota) int { return strings.Compare(a.Name, b.Name) })
	for _, q := range qs {
		base := total(q, kept)
		was, will := total(q, before), total(q, after)
		for _, name := range admission.SortedNames(q.Spec.Hard) {
			hard := q.Spec.Hard[name]
			b, a := sum(base[name], was[name]), sum(base[name], will[name])
			if a.Cmp(hard) <= 0 || a.Cmp(b) <= 0 {
				continue
			}
			at, from := biggest(q, name, after)
			if at == nil {
				at = quotas[q]
			}
			msg := fmt.Sprintf("breaks ResourceQuota %s/%s: %s would be %s, over its hard limit of %s (%s now)", ns, q.Name, name, a.String(), hard.String(), b.String())
			if from != "" {
				msg += "; the most from " + from
			}
			problems = append(problems, quotaProblem{at: at, msg: msg})
		}
	}
	return problems, nil
}

func storeRes(k key) store.Resource {
	r, err := store.ResourceByName(k.res)
	if err != nil {
		return store.Resource{}
	}
	return r
}

func sum(a, b resource.Quantity) resource.Quantity {
	out := a.DeepCopy()
	out.Add(b)
	return out
}

// total is what shares count against q.
func total(q *corev1.ResourceQuota, shares []share) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, s := range shares {
		if !admission.Matches(q, s.obj) {
			continue
		}
		for name, v := range admission.Usage(s.res, s.obj) {
			if _, ok := q.Spec.Hard[name]; !ok {
				continue
			}
			v.Mul(s.times)
			cur := out[name]
			cur.Add(v)
			out[name] = cur
		}
	}
	return out
}

// biggest is the revision's object that adds the most of name, and a few
// words of how.
func biggest(q *corev1.ResourceQuota, name corev1.ResourceName, shares []share) (*desired, string) {
	type part struct {
		d   *desired
		q   resource.Quantity
		say string
	}
	byObj := map[*desired]*part{}
	for _, s := range shares {
		if s.from == nil || !admission.Matches(q, s.obj) {
			continue
		}
		v, ok := admission.Usage(s.res, s.obj)[name]
		if !ok || v.IsZero() {
			continue
		}
		each := v.DeepCopy()
		v.Mul(s.times)
		p := byObj[s.from]
		if p == nil {
			p = &part{d: s.from}
			byObj[s.from] = p
		}
		p.q.Add(v)
		what := objectTitle(s.from.res.GVK.Kind, s.from.key.namespace, s.from.key.name)
		if s.res.GroupResource() != s.from.res.GroupResource() {
			p.say = fmt.Sprintf("%s: %d %s × %s", what, s.times, s.res.GroupResource(), each.String())
		} else {
			p.say = fmt.Sprintf("%s: %s", what, v.String())
		}
	}
	var best *part
	for _, p := range byObj {
		if best == nil || p.q.Cmp(best.q) > 0 || p.q.Cmp(best.q) == 0 && p.d.origin < best.d.origin {
			best = p
		}
	}
	if best == nil {
		return nil, ""
	}
	return best.d, best.say
}

// ranges are the LimitRanges of the namespace once the revision is
// applied.
func (in *nsObjects) ranges(w quotaWorld) ([]*corev1.LimitRange, error) {
	var out []*corev1.LimitRange
	cluster, err := w.list(rangesRes.GroupResource(), in.ns)
	if err != nil {
		return nil, err
	}
	for _, o := range cluster {
		if !in.ours(key{rangesRes.GroupResource(), in.ns, o.GetName()}) {
			out = append(out, o.(*corev1.LimitRange))
		}
	}
	for _, d := range in.head {
		if lr, ok := d.obj.(*corev1.LimitRange); ok {
			out = append(out, lr)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.LimitRange) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// kept is what the cluster holds in the namespace of the kinds counted
// that the revision neither writes nor runs: objects of other syncs or of
// none, and what controllers made for them (the pods of a CronJob's Jobs).
// The pods of the revision's and the sync's workloads are left out: their
// shares stand for them.
func (in *nsObjects) kept(kinds map[string]bool, w quotaWorld) ([]share, error) {
	ns := in.ns
	var replicaSets map[string]string // name → its Deployment's
	var out []share
	for _, kind := range sortedKeys(kinds) {
		r, err := store.ResourceByName(kind)
		if err != nil || !admission.Counted(r) {
			continue
		}
		items, err := w.list(kind, ns)
		if err != nil {
			return nil, err
		}
		for _, o := range items {
			if in.ours(key{kind, ns, o.GetName()}) {
				continue
			}
			if kind == "pods" {
				if replicaSets == nil {
					if replicaSets, err = deploymentsOf(ns, w); err != nil {
						return nil, err
					}
				}
				if in.runBy(o, replicaSets) {
					continue
				}
			}
			if kind == "persistentvolumeclaims" && in.setClaim(o.GetName()) {
				continue
			}
			out = append(out, share{res: r, obj: o, times: 1})
		}
	}
	return out, nil
}

func deploymentsOf(ns string, w quotaWorld) (map[string]string, error) {
	items, err := w.list("replicasets.apps", ns)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, o := range items {
		if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "Deployment" {
			out[o.GetName()] = ref.Name
		}
	}
	return out, nil
}

// runBy says whether a pod belongs to a workload of the revision or the
// sync (a Deployment's through its ReplicaSet).
func (in *nsObjects) runBy(p store.Object, replicaSets map[string]string) bool {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return false
	}
	switch ref.Kind {
	case "ReplicaSet":
		if in.ours(key{"replicasets.apps", in.ns, ref.Name}) {
			return true
		}
		d, ok := replicaSets[ref.Name]
		return ok && in.ours(key{"deployments.apps", in.ns, d})
	case "StatefulSet":
		return in.ours(key{"statefulsets.apps", in.ns, ref.Name})
	case "DaemonSet":
		return in.ours(key{"daemonsets.apps", in.ns, ref.Name})
	case "Job":
		return in.ours(key{"jobs.batch", in.ns, ref.Name})
	}
	return false
}

// setClaim says whether a claim is one a StatefulSet of the revision or
// the sync makes from its templates (<template>-<set>-<ordinal>).
func (in *nsObjects) setClaim(name string) bool {
	made := func(o store.Object) bool {
		set, ok := o.(*appsv1.StatefulSet)
		if !ok {
			return false
		}
		for _, t := range set.Spec.VolumeClaimTemplates {
			if strings.HasPrefix(name, t.Name+"-"+set.Name+"-") {
				return true
			}
		}
		return false
	}
	for _, d := range in.head {
		if made(d.obj) {
			return true
		}
	}
	for _, o := range in.old {
		if made(o) {
			return true
		}
	}
	return false
}

// sharesOf is what one object counts once its controllers have done their
// work. cur is the cluster's copy, if any: an autoscaled workload keeps
// its count, a finished Job runs no pods.
func sharesOf(r store.Resource, o store.Object, from *desired, ranges []*corev1.LimitRange, w quotaWorld, cur store.Object) ([]share, error) {
	out := []share{{res: r, obj: o, times: 1, from: from}}
	if p, ok := o.(*corev1.Pod); ok && len(ranges) > 0 {
		p = p.DeepCopy()
		admission.DefaultPod(p, ranges)
		out[0].obj = p
	}
	pods := func(t *corev1.PodTemplateSpec, n int64) {
		if n <= 0 {
			return
		}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: o.GetNamespace(), Name: o.GetName(), Labels: t.Labels}, Spec: *t.Spec.DeepCopy()}
		admission.DefaultPod(p, ranges)
		out = append(out, share{res: podsRes, obj: p, times: n, from: from})
	}
	replicas := func(want *int32, curReplicas *int32) int64 {
		if from != nil && from.replicasOwner != "" && curReplicas != nil {
			want = curReplicas
		}
		if want == nil {
			return 1
		}
		return int64(*want)
	}
	switch v := o.(type) {
	case *appsv1.Deployment:
		var c *int32
		if cd, ok := cur.(*appsv1.Deployment); ok {
			c = cd.Spec.Replicas
		}
		pods(&v.Spec.Template, replicas(v.Spec.Replicas, c))
	case *appsv1.ReplicaSet:
		var c *int32
		if cr, ok := cur.(*appsv1.ReplicaSet); ok {
			c = cr.Spec.Replicas
		}
		pods(&v.Spec.Template, replicas(v.Spec.Replicas, c))
	case *appsv1.StatefulSet:
		var c *int32
		if cs, ok := cur.(*appsv1.StatefulSet); ok {
			c = cs.Spec.Replicas
		}
		n := replicas(v.Spec.Replicas, c)
		pods(&v.Spec.Template, n)
		for _, t := range v.Spec.VolumeClaimTemplates {
			claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: v.Namespace, Name: t.Name + "-" + v.Name}, Spec: *t.Spec.DeepCopy()}
			out = append(out, share{res: claimsRes, obj: claim, times: n, from: from})
		}
	case *batchv1.Job:
		if cj, ok := cur.(*batchv1.Job); ok && jobFinished(cj) {
			break
		}
		n := int64(1)
		if v.Spec.Parallelism != nil {
			n = int64(*v.Spec.Parallelism)
		}
		if v.Spec.Completions != nil {
			n = min(n, int64(*v.Spec.Completions))
		}
		pods(&v.Spec.Template, n)
	case *appsv1.DaemonSet:
		nodes, err := w.nodes()
		if err != nil {
			return nil, err
		}
		sel := labels.SelectorFromSet(v.Spec.Template.Spec.NodeSelector)
		n := int64(0)
		for _, node := range nodes {
			if sel.Matches(labels.Set(node.Labels)) {
				n++
			}
		}
		pods(&v.Spec.Template, n)
	}
	return out, nil
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// quotaErrors turns the problems into errors at their objects' places.
func quotaErrors(problems []quotaProblem) schema.ErrorList {
	var out schema.ErrorList
	for _, p := range problems {
		e := &schema.Error{Msg: p.msg}
		if p.at != nil && p.at.src != nil {
			o := p.at.src
			e.File, e.Line, e.Doc, e.Kind, e.Namespace, e.Name, e.Via = o.File, o.Line, o.Doc, o.Kind, p.at.key.namespace, o.Name, o.Via
		} else if p.at != nil {
			e.File = p.at.origin
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *schema.Error) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return out
}

// storedQuotas are the ResourceQuotas the store holds, by namespace, the
// store's shared copies; the sync reads them once an apply, for its check
// and for the room its transactions leave admission (write).
func (s *Syncer) storedQuotas(ctx context.Context) (map[string][]store.Object, error) {
	l, err := s.Store.List(ctx, quotasRes, store.ListOptions{Shared: true})
	if err != nil {
		return nil, fmt.Errorf("%w: the quotas: %v", ErrApply, err)
	}
	byNS := map[string][]store.Object{}
	for _, o := range l.Items {
		byNS[o.GetNamespace()] = append(byNS[o.GetNamespace()], o)
	}
	return byNS, nil
}

// storeQuotaWorld is the quota check's world read from the store, with the
// stored quotas given.
func (s *Syncer) storeQuotaWorld(ctx context.Context, byNS map[string][]store.Object) quotaWorld {
	var w quotaWorld
	w.list = func(kind, ns string) ([]store.Object, error) {
		if kind == quotasRes.GroupResource() {
			return byNS[ns], nil
		}
		r, err := store.ResourceByName(kind)
		if err != nil {
			return nil, err
		}
		l, err := s.Store.List(ctx, r, store.ListOptions{Namespace: ns, Shared: true})
		if err != nil {
			return nil, err
		}
		return l.Items, nil
	}
	w.nodes = func() ([]*corev1.Node, error) {
		l, err := s.Store.List(ctx, store.MustResource("nodes"), store.ListOptions{Shared: true})
		if err != nil {
			return nil, err
		}
		out := make([]*corev1.Node, len(l.Items))
		for i, o := range l.Items {
			out[i] = o.(*corev1.Node)
		}
		return out, nil
	}
	return w
}

// checkQuotas refuses a revision that breaks a quota (checkQuotas), each
// problem at the file:line of the object that adds the most.
// Where neither the store nor the revision has a quota, nothing more is
// read.
func (s *Syncer) checkQuotas(ctx context.Context, head map[key]*desired, old map[key]store.Object, quotas map[string][]store.Object) (schema.ErrorList, error) {
	if len(quotas) == 0 && !hasQuota(head) {
		return nil, nil
	}
	problems, err := checkQuotas(head, old, s.storeQuotaWorld(ctx, quotas))
	if err != nil {
		return nil, fmt.Errorf("%w: the quotas: %v", ErrApply, err)
	}
	return quotaErrors(problems), nil
}

func hasQuota(head map[key]*desired) bool {
	for k := range head {
		if k.res == quotasRes.GroupResource() {
			return true
		}
	}
	return false
}
