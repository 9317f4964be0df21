package admission

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/keelson/keelson/store"
)

// Admission is the store's Admitter: ServiceAccounts, quotas and limit
// ranges.
type Admission struct {
	st     *store.Store
	quotas store.Resource
	limits store.Resource
}

// New makes the admission of st's writes; st.SetAdmitter(New(st)) turns it on.
func New(st *store.Store) *Admission {
	return &Admission{st: st, quotas: store.MustResource("resourcequotas"), limits: store.MustResource("limitranges")}
}

// Admits: the writes a quota may count, and those of quotas (a quota whose
// limits change is counted again) and limit ranges (they hold for the pods
// of the same transaction).
func (a *Admission) Admits(r store.Resource) bool {
	// Every namespaced kind but the few no quota counts, quotas and limit
	// ranges among those.
	if !r.Namespaced {
		return false
	}
	gr := r.GroupResource()
	return !uncounted[gr] || gr == "resourcequotas" || gr == "limitranges"
}

// counted is one change and what it counts before and after (a create's
// or delete's computed only when its namespace has quotas).
type counted struct {
	c        store.Change
	old, new corev1.ResourceList
}

// Admit mounts created pods' ServiceAccount tokens, sets the LimitRanges'
// defaults in them and checks them, then charges the changes to the quotas
// of their namespaces.
func (a *Admission) Admit(ctx context.Context, changes []store.Change) ([]store.Op, error) {
	byNS := map[string][]counted{}
	var nss []string
	written := map[string]bool{} // quotas the transaction writes itself
	ranges := map[string]store.Change{}
	for _, c := range changes {
		switch c.Resource.GroupResource() {
		case "resourcequotas":
			a.resetStatus(c)
			written[c.Namespace+"/"+nameOf(c)] = true
		case "limitranges":
			ranges[c.Namespace+"/"+nameOf(c)] = c
		}
	}
	lr := &rangeCache{a: a, written: ranges}
	sas := &serviceAccounts{a: a, written: map[string]*corev1.ServiceAccount{}}
	for _, c := range changes {
		if sa, ok := c.New.(*corev1.ServiceAccount); ok {
			sas.written[c.Namespace+"/"+sa.Name] = sa
		}
	}
	for _, c := range changes {
		if p, ok := c.New.(*corev1.Pod); ok && c.Old == nil {
			if err := mountServiceAccount(ctx, p, sas); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range changes {
		if !Counted(c.Resource) || sameCharge(c) {
			continue
		}
		if c.Old == nil {
			if err := a.limit(ctx, c, lr); err != nil {
				return nil, err
			}
		}
		cd := counted{c: c}
		if c.Old != nil && c.New != nil {
			// An update changes what it counts seldom: only those that do
			// need the namespace's quotas.
			cd.old, cd.new = Usage(c.Resource, c.Old), Usage(c.Resource, c.New)
			if equality.Semantic.DeepEqual(cd.old, cd.new) && !scopeFieldsChanged(c) {
				continue
			}
		}
		if _, ok := byNS[c.Namespace]; !ok {
			nss = append(nss, c.Namespace)
		}
		byNS[c.Namespace] = append(byNS[c.Namespace], cd)
	}
	var ops []store.Op
	for _, ns := range nss {
		more, err := a.charge(ctx, ns, byNS[ns], written)
		if err != nil {
			return nil, err
		}
		ops = append(ops, more...)
	}
	return ops, nil
}

func nameOf(c store.Change) string {
	if c.New != nil {
		return c.New.GetName()
	}
	return c.Old.GetName()
}

// sameCharge tells, without computing usage, an update of a pod that
// leaves what a quota counts of it alone: a status write, a binding. Those
// are most of a cluster's writes.
func sameCharge(c store.Change) bool {
	o, ok1 := c.Old.(*corev1.Pod)
	n, ok2 := c.New.(*corev1.Pod)
	if !ok1 || !ok2 || podCounts(o) != podCounts(n) || scopeFieldsChanged(c) {
		return false
	}
	same := func(a, b []corev1.Container) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equality.Semantic.DeepEqual(a[i].Resources, b[i].Resources) || a[i].RestartPolicy != b[i].RestartPolicy {
				return false
			}
		}
		return true
	}
	return same(o.Spec.Containers, n.Spec.Containers) && same(o.Spec.InitContainers, n.Spec.InitContainers) &&
		equality.Semantic.DeepEqual(o.Spec.Overhead, n.Spec.Overhead) && equality.Semantic.DeepEqual(o.Spec.Resources, n.Spec.Resources)
}

// scopeFieldsChanged: a pod whose usage is the same may still move between
// scopes (a change of activeDeadlineSeconds).
func scopeFieldsChanged(c store.Change) bool {
	o, ok1 := c.Old.(*corev1.Pod)
	n, ok2 := c.New.(*corev1.Pod)
	if !ok1 || !ok2 {
		return false
	}
	return !equality.Semantic.DeepEqual(o.Spec.ActiveDeadlineSeconds, n.Spec.ActiveDeadlineSeconds) || o.Spec.PriorityClassName != n.Spec.PriorityClassName
}

// resetStatus: a quota created, or whose limits or scopes change, is counted
// anew at the next write it counts (or by its controller).
func (a *Admission) resetStatus(c store.Change) {
	q, ok := c.New.(*corev1.ResourceQuota)
	if !ok {
		return
	}
	if old, ok := c.Old.(*corev1.ResourceQuota); ok && equality.Semantic.DeepEqual(old.Spec, q.Spec) {
		return
	}
	q.Status = corev1.ResourceQuotaStatus{}
}

// rangeCache reads each namespace's LimitRanges once a transaction, as the
// transaction leaves them (written).
type rangeCache struct {
	a       *Admission
	written map[string]store.Change
	byNS    map[string][]*corev1.LimitRange
}

func (r *rangeCache) of(ctx context.Context, ns string) ([]*corev1.LimitRange, error) {
	if got, ok := r.byNS[ns]; ok {
		return got, nil
	}
	got, err := r.a.ranges(ctx, ns, r.written)
	if err != nil {
		return nil, err
	}
	if r.byNS == nil {
		r.byNS = map[string][]*corev1.LimitRange{}
	}
	r.byNS[ns] = got
	return got, nil
}

// limit applies the namespace's LimitRanges to a created pod or claim.
func (a *Admission) limit(ctx context.Context, c store.Change, lr *rangeCache) error {
	switch o := c.New.(type) {
	case *corev1.Pod:
		ranges, err := lr.of(ctx, c.Namespace)
		if err != nil || len(ranges) == 0 {
			return err
		}
		DefaultPod(o, ranges)
		if problems := CheckPod(o, ranges); len(problems) > 0 {
			return fmt.Errorf("%w: pods %q is forbidden: [%s]", store.ErrForbidden, o.Name, strings.Join(problems, ", "))
		}
	case *corev1.PersistentVolumeClaim:
		ranges, err := lr.of(ctx, c.Namespace)
		if err != nil || len(ranges) == 0 {
			return err
		}
		if problems := CheckClaim(o, ranges); len(problems) > 0 {
			return fmt.Errorf("%w: persistentvolumeclaims %q is forbidden: [%s]", store.ErrForbidden, o.Name, strings.Join(problems, ", "))
		}
	}
	return nil
}

func (a *Admission) ranges(ctx context.Context, ns string, written map[string]store.Change) ([]*corev1.LimitRange, error) {
	l, err := a.st.List(ctx, a.limits, store.ListOptions{Namespace: ns, Shared: true})
	if err != nil {
		return nil, fmt.Errorf("admission: limit ranges of %s: %w", ns, err)
	}
	var out []*corev1.LimitRange
	for _, o := range l.Items {
		if _, ok := written[ns+"/"+o.GetName()]; !ok {
			out = append(out, o.(*corev1.LimitRange))
		}
	}
	for k, c := range written {
		if lr, ok := c.New.(*corev1.LimitRange); ok && strings.HasPrefix(k, ns+"/") {
			out = append(out, lr)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.LimitRange) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// charge adds the changes of one namespace to its quotas: an op that
// updates each quota's status.used, or one that holds the transaction to
// the namespace having none. A change that takes a quota's usage up beyond
// its hard limit, or a pod that leaves unset what a quota limits, is
// refused.
func (a *Admission) charge(ctx context.Context, ns string, cs []counted, written map[string]bool) ([]store.Op, error) {
	l, err := a.st.List(ctx, a.quotas, store.ListOptions{Namespace: ns})
	if err != nil {
		return nil, fmt.Errorf("admission: quotas of %s: %w", ns, err)
	}
	if len(l.Items) == 0 {
		return []store.Op{store.AbsentOp(a.quotas, ns)}, nil
	}
	for i := range cs { // a create's or delete's usage, needed only here
		c := &cs[i]
		if c.c.Old == nil || c.c.New == nil {
			c.old, c.new = Usage(c.c.Resource, c.c.Old), Usage(c.c.Resource, c.c.New)
		}
	}
	var ops []store.Op
	for _, o := range l.Items {
		q := o.(*corev1.ResourceQuota)
		if written[ns+"/"+q.Name] {
			continue // counted anew after this transaction
		}
		used := q.Status.Used
		if !Current(q) {
			if used, err = Count(ctx, a.st, q, l.ResourceVersion); err != nil {
				return nil, err
			}
		}
		after, err := chargeQuota(q, used, cs)
		if err != nil {
			return nil, err
		}
		if Current(q) && equality.Semantic.DeepEqual(after, q.Status.Used) {
			continue
		}
		q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard.DeepCopy(), Used: after}
		ops = append(ops, store.UpdateOp(q))
	}
	return ops, nil
}

// Current says whether q's status counts every resource of its spec.
func Current(q *corev1.ResourceQuota) bool {
	if !equality.Semantic.DeepEqual(q.Status.Hard, q.Spec.Hard) {
		return false
	}
	for name := range q.Spec.Hard {
		if _, ok := q.Status.Used[name]; !ok {
			return false
		}
	}
	return true
}

// chargeQuota is used with the changes q matches added; it refuses a change
// that raises a resource beyond q's hard limit (lowering never is refused,
// even over the limit, so that a namespace over its quota can shrink).
func chargeQuota(q *corev1.ResourceQuota, used corev1.ResourceList, cs []counted) (corev1.ResourceList, error) {
	after := used.DeepCopy()
	if after == nil {
		after = corev1.ResourceList{}
	}
	for _, c := range cs {
		var before, now corev1.ResourceList
		if Matches(q, c.c.Old) {
			before = c.old
		}
		if Matches(q, c.c.New) {
			now = c.new
			if p, ok := c.c.New.(*corev1.Pod); ok && podCounts(p) {
				if miss := missing(p, q.Spec.Hard); len(miss) > 0 {
					slices.Sort(miss)
					return nil, fmt.Errorf("%w: pods %q is forbidden: failed quota: %s: must specify %s", store.ErrForbidden, p.Name, q.Name, strings.Join(miss, "; "))
				}
			}
		}
		var up []corev1.ResourceName
		for _, name := range SortedNames(q.Spec.Hard) {
			d := now[name].DeepCopy()
			d.Sub(before[name])
			if d.IsZero() {
				continue
			}
			total := after[name].DeepCopy()
			total.Add(d)
			after[name] = total
			if d.Sign() > 0 && total.Cmp(q.Spec.Hard[name]) > 0 {
				up = append(up, name)
			}
		}
		if len(up) > 0 {
			requested := corev1.ResourceList{}
			for _, name := range up {
				r := now[name].DeepCopy()
				r.Sub(before[name])
				requested[name] = r
			}
			prior := used.DeepCopy()
			for _, name := range up { // what was used before this change
				u := after[name].DeepCopy()
				u.Sub(requested[name])
				prior[name] = u
			}
			return nil, fmt.Errorf("%w: %s %q is forbidden: exceeded quota: %s, requested: %s, used: %s, limited: %s",
				store.ErrForbidden, c.c.Resource.GroupResource(), nameOf(c.c), q.Name,
				quantities(requested, up), quantities(prior, up), quantities(q.Spec.Hard, up))
		}
	}
	for name := range q.Spec.Hard {
		if _, ok := after[name]; !ok {
			after[name] = zero.DeepCopy()
		}
	}
	for name := range after {
		if _, ok := q.Spec.Hard[name]; !ok {
			delete(after, name)
		}
	}
	return after, nil
}
