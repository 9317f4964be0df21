package reconciler

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Annotations and labels the Deployment controller writes on ReplicaSets,
// with Kubernetes' names so tools that read them keep working.
const (
	// RevisionAnnotation numbers a Deployment's ReplicaSets in rollout order.
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// PodTemplateHashLabel tells the ReplicaSets (and their pods) of one
	// Deployment apart.
	PodTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey
)

// Defaults of apps/v1 Deployments, applied when the spec leaves them unset.
const (
	defaultRevisionHistoryLimit    = 10
	defaultProgressDeadlineSeconds = 600
)

// surgeAndUnavailable resolves a rolling update's maxSurge and maxUnavailable
// against replicas as Kubernetes does: percentages of maxSurge round up, of
// maxUnavailable round down, and when both come out 0, maxUnavailable is 1 so
// the rollout can move.
func surgeAndUnavailable(replicas int32, ru *appsv1.RollingUpdateDeployment) (surge, unavailable int32, err error) {
	ms := intstr.FromString("25%")
	mu := intstr.FromString("25%")
	if ru != nil && ru.MaxSurge != nil {
		ms = *ru.MaxSurge
	}
	if ru != nil && ru.MaxUnavailable != nil {
		mu = *ru.MaxUnavailable
	}
	s, err := intstr.GetScaledValueFromIntOrPercent(&ms, int(replicas), true)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxSurge: %w", err)
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(&mu, int(replicas), false)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxUnavailable: %w", err)
	}
	if s < 0 || u < 0 {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate: maxSurge and maxUnavailable must not be negative")
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u), nil
}

// maxUnavailableOf is the number of unavailable pods a Deployment tolerates
// (0 for Recreate, whose pods are all down at once anyway).
func maxUnavailableOf(d *appsv1.Deployment) int32 {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return 0
	}
	_, u, err := surgeAndUnavailable(replicasOf(d.Spec.Replicas), d.Spec.Strategy.RollingUpdate)
	if err != nil {
		return 0
	}
	return min(u, replicasOf(d.Spec.Replicas))
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// newReplicas is the next size of the new ReplicaSet in a rolling update:
// as large as the surge allows, never above replicas. total is the sum of
// every ReplicaSet's size (its spec, or its pods when more remain).
func newReplicas(replicas, surge, total, cur int32) int32 {
	if cur >= replicas {
		return replicas
	}
	room := replicas + surge - total
	if room <= 0 {
		return cur
	}
	return cur + min(room, replicas-cur)
}

// scaleDownBudget is how many pods of old ReplicaSets a rolling update may
// remove now: available pods beyond replicas-maxUnavailable.
func scaleDownBudget(replicas, maxUnavailable, available int32) int32 {
	return max(0, available-(replicas-maxUnavailable))
}

// templateHash names a pod template: equal templates (ignoring the hash label
// itself) get equal hashes; collisionCount moves a colliding one.
func templateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	cp := t.DeepCopy()
	delete(cp.Labels, PodTemplateHashLabel)
	b, _ := json.Marshal(cp)
	h := fnv.New32a()
	h.Write(b)
	if collisionCount != nil {
		fmt.Fprintf(h, "%d", *collisionCount)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// sameTemplate reports whether two pod templates are equal apart from the
// pod-template-hash label.
func sameTemplate(a, b *corev1.PodTemplateSpec) bool {
	x, y := a.DeepCopy(), b.DeepCopy()
	delete(x.Labels, PodTemplateHashLabel)
	delete(y.Labels, PodTemplateHashLabel)
	if len(x.Labels) == 0 {
		x.Labels = nil
	}
	if len(y.Labels) == 0 {
		y.Labels = nil
	}
	return equality.Semantic.DeepEqual(x, y)
}

func revisionOf(rs *appsv1.ReplicaSet) int64 {
	n, _ := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	return n
}

func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		m = max(m, revisionOf(rs))
	}
	return m
}

// byAge sorts ReplicaSets oldest first (by revision, then creation).
func byAge(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		ri, rj := revisionOf(rss[i]), revisionOf(rss[j])
		if ri != rj {
			return ri < rj
		}
		if !rss[i].CreationTimestamp.Equal(&rss[j].CreationTimestamp) {
			return rss[i].CreationTimestamp.Before(&rss[j].CreationTimestamp)
		}
		return rss[i].Name < rss[j].Name
	})
}
