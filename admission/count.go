package admission

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
)

// Count is q's usage counted from the store's objects as of revision rv
// (empty: the latest), the resources of q.Spec.Hard only, each present.
// Read at or after the revision q was read at, and written back
// compare-and-swap on q, it is exact: every later write that changes what q
// counts also writes q.
func Count(ctx context.Context, st *store.Store, q *corev1.ResourceQuota, rv string) (corev1.ResourceList, error) {
	used := corev1.ResourceList{}
	for name := range q.Spec.Hard {
		used[name] = zero.DeepCopy()
	}
	kinds := Kinds(q.Spec.Hard)
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		r, err := store.ResourceByName(k)
		if err != nil || !Counted(r) {
			continue // a kind keelson does not keep counts nothing
		}
		l, err := st.List(ctx, r, store.ListOptions{Namespace: q.Namespace, ResourceVersion: rv, Shared: true})
		if err != nil {
			return nil, fmt.Errorf("admission: counting %s of quota %s/%s: %w", k, q.Namespace, q.Name, err)
		}
		rv = l.ResourceVersion
		for _, o := range l.Items {
			if !Matches(q, o) {
				continue
			}
			for name, v := range Usage(r, o) {
				if cur, ok := used[name]; ok && kindOf(name) == k {
					cur.Add(v)
					used[name] = cur
				}
			}
		}
	}
	return used, nil
}
