package gitsync

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/keelson/keelson/store"
)

// The kinds a HorizontalPodAutoscaler scales, by kind, as storage keys
// name them.
var scalableKinds = map[string]string{
	"Deployment":  "deployments.apps",
	"ReplicaSet":  "replicasets.apps",
	"StatefulSet": "statefulsets.apps",
}

// markAutoscaled notes on each object of the revision that an autoscaler
// of the revision (in byKey, or among more: a plan's untouched files)
// scales it: its spec.replicas then belongs to the autoscaler, and Git's
// value only sets the first count.
func markAutoscaled(byKey map[key]*desired, more map[key]*desired) {
	for _, d := range iterAll(byKey, more) {
		hpa, ok := d.obj.(*autoscalingv2.HorizontalPodAutoscaler)
		if !ok {
			continue
		}
		ref := hpa.Spec.ScaleTargetRef
		res, ok := scalableKinds[ref.Kind]
		if !ok || !strings.HasPrefix(ref.APIVersion, "apps/") {
			continue
		}
		t, ok := byKey[key{res: res, namespace: d.key.namespace, name: ref.Name}]
		if !ok {
			continue
		}
		t.replicasOwner = d.key.name
	}
}

// iterAll yields the objects of every map.
func iterAll(ms ...map[key]*desired) iter.Seq2[key, *desired] {
	return func(yield func(key, *desired) bool) {
		for _, m := range ms {
			for k, d := range m {
				if !yield(k, d) {
					return
				}
			}
		}
	}
}

// untouchedAutoscalers loads the autoscalers of the files a change leaves
// alone: they still own the replicas of the objects the change touches.
func (s *Syncer) untouchedAutoscalers(ctx context.Context, bl *blobs, head planTree, changed map[string]bool) (map[key]*desired, error) {
	return s.loadUntouched(ctx, bl, head, changed, func(b []byte) bool {
		return bytes.Contains(b, []byte("HorizontalPodAutoscaler"))
	})
}

// autoscaledOf names the objects markAutoscaled marked, as "Kind
// namespace/name (HorizontalPodAutoscaler name)".
func autoscaledOf(byKey map[key]*desired) []string {
	var out []string
	for _, d := range byKey {
		if d.replicasOwner != "" {
			out = append(out, fmt.Sprintf("%s %s/%s (HorizontalPodAutoscaler %s)", d.res.GVK.Kind, d.key.namespace, d.key.name, d.replicasOwner))
		}
	}
	slices.Sort(out)
	return out
}

// keepReplicas copies the stored object's spec.replicas into want: the
// autoscaler's count stands, and the sync neither reverts it nor counts it
// as drift.
func keepReplicas(want, cur store.Object) {
	switch w := want.(type) {
	case *appsv1.Deployment:
		if c, ok := cur.(*appsv1.Deployment); ok {
			w.Spec.Replicas = c.Spec.Replicas
		}
	case *appsv1.ReplicaSet:
		if c, ok := cur.(*appsv1.ReplicaSet); ok {
			w.Spec.Replicas = c.Spec.Replicas
		}
	case *appsv1.StatefulSet:
		if c, ok := cur.(*appsv1.StatefulSet); ok {
			w.Spec.Replicas = c.Spec.Replicas
		}
	}
}

// autoscaledClause says in one clause whose replicas follow an autoscaler.
func autoscaledClause(names []string) string {
	if len(names) == 0 {
		return ""
	}
	shown := names[:min(len(names), maxNotActedOnNamed)]
	s := "replicas follow their autoscaler, not Git, for " + strings.Join(shown, ", ")
	if len(names) > len(shown) {
		s += fmt.Sprintf(" and %d more", len(names)-len(shown))
	}
	return s
}
