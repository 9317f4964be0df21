package gitsync

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/keelson/keelson/store"
)

// workload is what effects need of an object that runs pods.
type workload struct {
	replicas int32
	scalable bool // has spec.replicas
	template *corev1.PodTemplateSpec
}

func workloadOf(o store.Object) (workload, bool) {
	n := func(p *int32) int32 {
		if p == nil {
			return 1
		}
		return *p
	}
	switch w := o.(type) {
	case *appsv1.Deployment:
		return workload{n(w.Spec.Replicas), true, &w.Spec.Template}, true
	case *appsv1.ReplicaSet:
		return workload{n(w.Spec.Replicas), true, &w.Spec.Template}, true
	case *appsv1.StatefulSet:
		return workload{n(w.Spec.Replicas), true, &w.Spec.Template}, true
	case *corev1.ReplicationController:
		if w.Spec.Template == nil {
			return workload{}, false
		}
		return workload{n(w.Spec.Replicas), true, w.Spec.Template}, true
	case *appsv1.DaemonSet:
		return workload{template: &w.Spec.Template}, true
	case *batchv1.Job:
		return workload{replicas: n(w.Spec.Parallelism), template: &w.Spec.Template}, true
	}
	return workload{}, false
}

// effects says what the cluster would do when old (nil: absent) becomes
// head (nil: deleted). cl, when known, adds what only the cluster knows.
func effects(old, head store.Object, cl *clusterState) []string {
	switch {
	case head == nil:
		return deleteEffects(old, cl)
	case old == nil:
		return createEffects(head, cl)
	}
	ow, ok := workloadOf(old)
	hw, ok2 := workloadOf(head)
	if !ok || !ok2 {
		if o, ok := old.(*batchv1.CronJob); ok {
			if h, ok := head.(*batchv1.CronJob); ok && o.Spec.Schedule != h.Spec.Schedule {
				return []string{fmt.Sprintf("schedule %q → %q", o.Spec.Schedule, h.Spec.Schedule)}
			}
		}
		return nil
	}
	var out []string
	if hw.scalable && ow.replicas != hw.replicas {
		msg := fmt.Sprintf("scale %d → %d", ow.replicas, hw.replicas)
		if h, ok := head.(*appsv1.StatefulSet); ok {
			msg += ": " + statefulScale(h, ow.replicas, hw.replicas)
		}
		out = append(out, msg)
	}
	if !equality.Semantic.DeepEqual(ow.template, hw.template) {
		out = append(out, rollout(old, head, hw, templateChange(ow.template, hw.template)))
	}
	return out
}

// templateChange describes a change of pod template: the images that
// change, else that the template does.
func templateChange(o, h *corev1.PodTemplateSpec) string {
	old := map[string]string{}
	for _, c := range o.Spec.Containers {
		old[c.Name] = c.Image
	}
	var parts []string
	for _, c := range h.Spec.Containers {
		prev, ok := old[c.Name]
		switch {
		case ok && prev != c.Image && len(h.Spec.Containers) == 1:
			parts = append(parts, fmt.Sprintf("image %s → %s", prev, c.Image))
		case ok && prev != c.Image:
			parts = append(parts, fmt.Sprintf("%s: image %s → %s", c.Name, prev, c.Image))
		case !ok:
			parts = append(parts, fmt.Sprintf("new container %s (%s)", c.Name, c.Image))
		}
	}
	if len(parts) == 0 {
		return "pod template changed"
	}
	return strings.Join(parts, ", ")
}

// rollout says how the pods of a workload whose template changed are
// replaced.
func rollout(old, head store.Object, hw workload, what string) string {
	switch h := head.(type) {
	case *appsv1.Deployment:
		if h.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
			return fmt.Sprintf("recreate %s, %s: all old pods stop before new ones start", podCount(hw.replicas), what)
		}
		surge, unavail := rollingBounds(h.Spec.Strategy.RollingUpdate, hw.replicas)
		return fmt.Sprintf("rolling update of %s, %s, at most %d extra and %d unavailable at a time", podCount(hw.replicas), what, surge, unavail)
	case *appsv1.StatefulSet:
		if h.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return fmt.Sprintf("%s: pods keep the old template until deleted (OnDelete)", what)
		}
		at := "one at a time"
		ru := h.Spec.UpdateStrategy.RollingUpdate
		if ru != nil && ru.MaxUnavailable != nil {
			if n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, int(hw.replicas), true); err == nil && n > 1 {
				at = fmt.Sprintf("%d at a time", n)
			}
		}
		msg := fmt.Sprintf("rolling update of %s, %s, %s from the highest ordinal", podCount(hw.replicas), what, at)
		first := int32(0)
		if ru != nil && ru.Partition != nil {
			first = *ru.Partition
		}
		if first < hw.replicas {
			msg += fmt.Sprintf(" (%s)", ordinalRange(h, hw.replicas-1, first))
		}
		if first > 0 {
			msg += fmt.Sprintf(", only ordinals ≥ %d", first)
		}
		return msg
	case *appsv1.DaemonSet:
		if h.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
			return fmt.Sprintf("%s: pods keep the old template until deleted (OnDelete)", what)
		}
		nodes := int32(0)
		if o, ok := old.(*appsv1.DaemonSet); ok {
			nodes = o.Status.DesiredNumberScheduled
		}
		var ru appsv1.RollingUpdateDaemonSet
		if h.Spec.UpdateStrategy.RollingUpdate != nil {
			ru = *h.Spec.UpdateStrategy.RollingUpdate
		}
		where := "on every node it runs on"
		if nodes > 0 {
			where = fmt.Sprintf("of %s, one per node", podCount(nodes))
		}
		return fmt.Sprintf("rolling update %s, %s, at most %s unavailable at a time", where, what, intOrPercent(ru.MaxUnavailable, "1"))
	case *batchv1.Job:
		if h.Annotations[AnnotationReplaceOnChange] == "true" {
			return what + ": the Job is deleted and created again, and runs from the start"
		}
		return what + ": a Job's template cannot change"
	}
	return what + ": running pods keep the old template; only pods created from now on use it"
}

// statefulScale says which ordinals a scale of set from old to head
// replicas adds or removes, and in which order, and what becomes of the
// claims of removed ones.
func statefulScale(set *appsv1.StatefulSet, old, head int32) string {
	order := "in order"
	if set.Spec.PodManagementPolicy == appsv1.ParallelPodManagement {
		order = "at once"
	}
	if head > old {
		return fmt.Sprintf("adds %s, %s", ordinalRange(set, old, head-1), order)
	}
	msg := fmt.Sprintf("removes %s, %s", ordinalRange(set, old-1, head), map[string]string{"in order": "highest first", "at once": "at once"}[order])
	if len(set.Spec.VolumeClaimTemplates) > 0 {
		if p := set.Spec.PersistentVolumeClaimRetentionPolicy; p != nil && p.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			msg += "; their claims are deleted with them"
		} else {
			msg += "; their claims stay"
		}
	}
	return msg
}

// ordinalRange names set's pods from ordinal a to b (either way round):
// "db-2, db-1, db-0", or "db-0 … db-9" when there are more than four.
func ordinalRange(set *appsv1.StatefulSet, a, b int32) string {
	start := int32(0)
	if set.Spec.Ordinals != nil {
		start = set.Spec.Ordinals.Start
	}
	name := func(i int32) string { return fmt.Sprintf("%s-%d", set.Name, start+i) }
	step := int32(1)
	if b < a {
		step = -1
	}
	if (b-a)*step >= 4 {
		return name(a) + " … " + name(b)
	}
	var out []string
	for i := a; ; i += step {
		out = append(out, name(i))
		if i == b {
			break
		}
	}
	return strings.Join(out, ", ")
}

// rollingBounds resolves a Deployment's maxSurge (rounded up) and
// maxUnavailable (rounded down) against its replicas, as the Deployment
// controller does; both zero would stall, so unavailable becomes 1.
func rollingBounds(ru *appsv1.RollingUpdateDeployment, replicas int32) (surge, unavail int) {
	quarter := intstr.FromString("25%")
	ms, mu := &quarter, &quarter
	if ru != nil {
		if ru.MaxSurge != nil {
			ms = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			mu = ru.MaxUnavailable
		}
	}
	surge, _ = intstr.GetScaledValueFromIntOrPercent(ms, int(replicas), true)
	unavail, _ = intstr.GetScaledValueFromIntOrPercent(mu, int(replicas), false)
	if surge == 0 && unavail == 0 {
		unavail = 1
	}
	return surge, unavail
}

func intOrPercent(v *intstr.IntOrString, def string) string {
	if v == nil {
		return def
	}
	return v.String()
}

func createEffects(head store.Object, cl *clusterState) []string {
	w, ok := workloadOf(head)
	if !ok {
		return nil
	}
	switch h := head.(type) {
	case *appsv1.DaemonSet:
		if cl != nil {
			return []string{fmt.Sprintf("runs one pod on each of %d schedulable nodes", len(cl.schedulable()))}
		}
		return []string{"runs one pod on every node"}
	case *appsv1.StatefulSet:
		if w.replicas == 0 {
			return []string{"creates no pod (0 replicas)"}
		}
		order := "each once the one before is ready"
		if h.Spec.PodManagementPolicy == appsv1.ParallelPodManagement {
			order = "all at once"
		}
		out := []string{fmt.Sprintf("creates %s %s, %s (%s)", podCount(w.replicas), ordinalRange(h, 0, w.replicas-1), order, imagesOf(w.template))}
		for _, ct := range h.Spec.VolumeClaimTemplates {
			out = append(out, fmt.Sprintf("creates claim %s-%s-0 and one more for each other ordinal", ct.Name, h.Name))
		}
		return out
	case *batchv1.Job:
		completions := int32(1)
		if h.Spec.Completions != nil {
			completions = *h.Spec.Completions
		}
		return []string{fmt.Sprintf("runs %s to completion, %d at a time", podCount(completions), w.replicas)}
	}
	return []string{fmt.Sprintf("creates %s (%s)", podCount(w.replicas), imagesOf(w.template))}
}

func imagesOf(t *corev1.PodTemplateSpec) string {
	var s []string
	for _, c := range t.Spec.Containers {
		s = append(s, c.Image)
	}
	return strings.Join(s, ", ")
}

func deleteEffects(old store.Object, cl *clusterState) []string {
	if old.GetAnnotations()[AnnotationPrune] == "disabled" {
		return []string{"left in the cluster: it is annotated " + AnnotationPrune + ": disabled"}
	}
	switch o := old.(type) {
	case *corev1.Namespace:
		if cl != nil {
			return []string{fmt.Sprintf("deleted, with its %d objects", cl.inNamespace[o.Name])}
		}
		return []string{"deleted, with every object in it"}
	case *corev1.PersistentVolumeClaim:
		return []string{"deleted: the data of its volume may be lost, by the reclaim policy of its PersistentVolume"}
	case *appsv1.DaemonSet:
		return []string{"deleted: its pod stops on every node"}
	}
	if w, ok := workloadOf(old); ok && w.scalable {
		return []string{fmt.Sprintf("deleted, stopping its %s", podCount(w.replicas))}
	}
	return nil
}

// pods is "1 pod" or "n pods".
func podCount(n int32) string {
	if n == 1 {
		return "1 pod"
	}
	return fmt.Sprintf("%d pods", n)
}
