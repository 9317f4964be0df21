package reconciler

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/admission"
	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/internal/support"
	"github.com/keelson/keelson/store"
)

// HealthStatus is the health of one object in the vocabulary Argo CD users
// know, and Unsupported, which is keelson's own. The values are stable
// strings: they are stored in Syncs and read by tools.
type HealthStatus string

// Health statuses, from best to worst (see Worse).
const (
	// Healthy: the object does what its spec asks.
	Healthy HealthStatus = "Healthy"
	// Suspended: paused on purpose (a paused Deployment, a suspended Job).
	Suspended HealthStatus = "Suspended"
	// Unsupported: keelson stores the object but does not act on its kind
	// yet (internal/support's list), so nothing it asks for happens. Not
	// Argo CD's Unknown, which means a health check failed and ranks worst:
	// here the cause is known and stays until keelson learns the kind.
	// It ranks below Progressing and Missing, so that a roll-up shows a
	// rollout or a lost object first and this once they settle, and above
	// Suspended, which someone chose.
	Unsupported HealthStatus = "Unsupported"
	// Progressing: not there yet, but moving (a rollout, pods starting).
	Progressing HealthStatus = "Progressing"
	// Missing: declared in Git, absent from the cluster.
	Missing HealthStatus = "Missing"
	// Degraded: failed or stuck (deadline exceeded, pods failing).
	Degraded HealthStatus = "Degraded"
	// Unknown: health cannot be told.
	Unknown HealthStatus = "Unknown"
)

var healthRank = map[HealthStatus]int{Healthy: 0, Suspended: 1, Unsupported: 2, Progressing: 3, Missing: 4, Degraded: 5, Unknown: 6}

// Worse reports whether a is worse than b, in the order Healthy, Suspended,
// Unsupported, Progressing, Missing, Degraded, Unknown (Argo CD's, with
// Unsupported added).
func Worse(a, b HealthStatus) bool { return healthRank[a] > healthRank[b] }

// Health is an object's health and a sentence saying why.
type Health struct {
	Status  HealthStatus
	Message string
}

// HealthOf computes the health of one object from its spec and status; nil
// is Missing. An object of a kind keelson does not act on yet is
// Unsupported, whatever its status says: nothing writes that status.
// Other kinds without a health rule are Healthy when they exist.
func HealthOf(obj store.Object) Health {
	var gk schema.GroupKind
	if obj != nil {
		if r, err := store.ResourceOf(obj); err == nil {
			gk = r.GVK.GroupKind()
		}
	}
	return healthOfKind(gk, obj)
}

// healthOfKind is HealthOf for a caller that knows obj's kind, which spares
// a lookup in the scheme for each object of a large inventory.
func healthOfKind(gk schema.GroupKind, obj store.Object) Health {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return Health{Missing, "not found in the cluster"}
	}
	if h := presentHealth(gk); h.Status == Unsupported {
		return h
	}
	return ruleHealth(obj)
}

// presentHealth is the health of an existing object of kind gk that has no
// health rule: Unsupported when keelson does not act on the kind yet.
func presentHealth(gk schema.GroupKind) Health {
	if missing, ok := support.NotActedOn(gk); ok {
		return Health{Unsupported, missing}
	}
	return Health{Status: Healthy}
}

// ruleHealth is the health of an existing object by its kind's rule. A
// kind on support's list is Unsupported instead (HealthOf); when it leaves
// the list, its rule here applies.
func ruleHealth(obj store.Object) Health {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return deploymentHealth(o)
	case *appsv1.ReplicaSet:
		return replicasHealth("replica set", o.Generation, o.Status.ObservedGeneration, replicasOf(o.Spec.Replicas), o.Status.AvailableReplicas, rsFailure(o.Status))
	case *corev1.ReplicationController:
		var failure string
		for _, c := range o.Status.Conditions {
			if c.Type == corev1.ReplicationControllerReplicaFailure && c.Status == corev1.ConditionTrue {
				failure = c.Message
			}
		}
		return replicasHealth("replication controller", o.Generation, o.Status.ObservedGeneration, replicasOf(o.Spec.Replicas), o.Status.AvailableReplicas, failure)
	case *appsv1.StatefulSet:
		return statefulSetHealth(o)
	case *appsv1.DaemonSet:
		return replicasHealth("daemon set", o.Generation, o.Status.ObservedGeneration, o.Status.DesiredNumberScheduled, o.Status.NumberAvailable, "")
	case *batchv1.Job:
		return jobHealth(o)
	case *batchv1.CronJob:
		return cronJobHealth(o)
	case *corev1.Pod:
		return podHealth(o)
	case *corev1.Namespace:
		if o.Status.Phase == corev1.NamespaceTerminating {
			return Health{Progressing, "Namespace is terminating"}
		}
	case *corev1.PersistentVolume:
		return volumeHealth(o)
	case *corev1.PersistentVolumeClaim:
		return claimHealth(o)
	case *keelsonv1alpha1.NodePolicy:
		return nodePolicyHealth(o)
	case *corev1.Service:
		return serviceHealth(o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		return hpaHealth(o)
	case *corev1.ResourceQuota:
		return quotaHealth(o)
	case *policyv1.PodDisruptionBudget:
		return budgetHealth(o)
	}
	return Health{Status: Healthy}
}

// budgetHealth: Progressing until the budget is counted, Degraded while
// fewer of its pods are healthy than it needs (nothing can be evicted),
// Healthy otherwise.
func budgetHealth(b *policyv1.PodDisruptionBudget) Health {
	s := b.Status
	if s.ObservedGeneration < b.Generation || b.Generation == 0 && len(s.Conditions) == 0 {
		return Health{Progressing, "waiting for the budget's pods to be counted"}
	}
	if s.CurrentHealthy < s.DesiredHealthy {
		return Health{Degraded, fmt.Sprintf("%d healthy pods of the %d the budget needs", s.CurrentHealthy, s.DesiredHealthy)}
	}
	return Health{Status: Healthy}
}

// quotaHealth: Progressing until the quota is counted, Degraded while its
// namespace uses more than it allows (its limits were lowered below what
// runs: nothing more is admitted), Healthy otherwise.
func quotaHealth(q *corev1.ResourceQuota) Health {
	if !admission.Current(q) {
		return Health{Progressing, "waiting for the quota's usage to be counted"}
	}
	var over []string
	for name, hard := range q.Spec.Hard {
		if used := q.Status.Used[name]; used.Cmp(hard) > 0 {
			over = append(over, fmt.Sprintf("%s %s of %s", name, used.String(), hard.String()))
		}
	}
	if len(over) > 0 {
		slices.Sort(over)
		return Health{Degraded, "the namespace uses more than its quota allows: " + strings.Join(over, ", ")}
	}
	return Health{Status: Healthy}
}

// hpaHealth: Progressing until the autoscaler has computed this generation,
// Degraded while it cannot get its target or compute from its metrics (a
// target scaled to zero is its owner's choice), Healthy otherwise.
func hpaHealth(h *autoscalingv2.HorizontalPodAutoscaler) Health {
	if h.Status.ObservedGeneration == nil || *h.Status.ObservedGeneration < h.Generation || len(h.Status.Conditions) == 0 {
		return Health{Progressing, "waiting for the autoscaler to compute this generation"}
	}
	for _, c := range h.Status.Conditions {
		switch {
		case c.Type == autoscalingv2.AbleToScale && c.Status == corev1.ConditionFalse,
			c.Type == autoscalingv2.ScalingActive && c.Status == corev1.ConditionFalse && c.Reason != "ScalingDisabled":
			return Health{Degraded, fmt.Sprintf("%s: %s", c.Reason, c.Message)}
		}
	}
	return Health{Status: Healthy}
}

func rsFailure(s appsv1.ReplicaSetStatus) string {
	for _, c := range s.Conditions {
		if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
			return c.Message
		}
	}
	return ""
}

func deploymentHealth(d *appsv1.Deployment) Health {
	if d.Spec.Paused {
		return Health{Suspended, "Deployment is paused"}
	}
	s := d.Status
	if d.Generation > s.ObservedGeneration {
		return Health{Progressing, "Waiting for rollout to finish: observed deployment generation less than desired generation"}
	}
	if c := deployCondition(s, appsv1.DeploymentProgressing); c != nil && c.Reason == ReasonProgressDeadline {
		return Health{Degraded, fmt.Sprintf("Deployment %q exceeded its progress deadline", d.Name)}
	}
	// Pods it cannot make (a quota refuses them) will not come by waiting.
	if c := deployCondition(s, appsv1.DeploymentReplicaFailure); c != nil && c.Status == corev1.ConditionTrue {
		return Health{Degraded, fmt.Sprintf("%s: %s", c.Reason, c.Message)}
	}
	want := replicasOf(d.Spec.Replicas)
	switch {
	case s.UpdatedReplicas < want:
		return Health{Progressing, fmt.Sprintf("Waiting for rollout to finish: %d out of %d new replicas have been updated...", s.UpdatedReplicas, want)}
	case s.Replicas > s.UpdatedReplicas:
		return Health{Progressing, fmt.Sprintf("Waiting for rollout to finish: %d old replicas are pending termination...", s.Replicas-s.UpdatedReplicas)}
	case s.AvailableReplicas < s.UpdatedReplicas:
		return Health{Progressing, fmt.Sprintf("Waiting for rollout to finish: %d of %d updated replicas are available...", s.AvailableReplicas, s.UpdatedReplicas)}
	}
	return Health{Status: Healthy}
}

func replicasHealth(what string, gen, observed int64, want, available int32, failure string) Health {
	if gen > observed {
		return Health{Progressing, fmt.Sprintf("Waiting for rollout to finish: observed %s generation less than desired generation", what)}
	}
	if failure != "" {
		return Health{Degraded, failure}
	}
	if available < want {
		return Health{Progressing, fmt.Sprintf("Waiting for rollout to finish: %d out of %d new replicas are available...", available, want)}
	}
	return Health{Status: Healthy}
}

// statefulSetHealth is Argo CD's rule for StatefulSets: every pod ready,
// then the rollout complete (up to the partition; OnDelete waits for no
// rollout).
func statefulSetHealth(s *appsv1.StatefulSet) Health {
	if s.Status.ObservedGeneration == 0 || s.Generation > s.Status.ObservedGeneration {
		return Health{Progressing, "Waiting for statefulset spec update to be observed..."}
	}
	want := replicasOf(s.Spec.Replicas)
	if s.Status.ReadyReplicas < want {
		return Health{Progressing, fmt.Sprintf("Waiting for %d pods to be ready...", want-s.Status.ReadyReplicas)}
	}
	strategy := s.Spec.UpdateStrategy
	if strategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return Health{Healthy, fmt.Sprintf("statefulset has %d ready pods", s.Status.ReadyReplicas)}
	}
	if ru := strategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
		n := max(0, want-*ru.Partition)
		if s.Status.UpdatedReplicas < n {
			return Health{Progressing, fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...", s.Status.UpdatedReplicas, n)}
		}
		return Health{Healthy, fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...", s.Status.UpdatedReplicas)}
	}
	if s.Status.UpdateRevision != s.Status.CurrentRevision {
		return Health{Progressing, fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s...", s.Status.UpdatedReplicas, s.Status.UpdateRevision)}
	}
	return Health{Healthy, fmt.Sprintf("statefulset rolling update complete %d pods at revision %s...", s.Status.CurrentReplicas, s.Status.CurrentRevision)}
}

// volumeHealth: a volume Available, Bound or Released (kept, by its
// reclaim policy) does what it should; Pending is on its way; Failed says
// why.
func volumeHealth(v *corev1.PersistentVolume) Health {
	switch v.Status.Phase {
	case corev1.VolumeFailed:
		return Health{Degraded, cmpOrString(v.Status.Message, "volume failed")}
	case corev1.VolumePending, "":
		return Health{Progressing, "volume is not available yet"}
	case corev1.VolumeReleased:
		return Health{Healthy, "its claim is gone; the volume and its data are kept (reclaim policy Retain)"}
	}
	return Health{Status: Healthy}
}

// claimHealth is Argo CD's rule for claims: Bound is Healthy, Pending is
// Progressing, Lost is Degraded.
func claimHealth(c *corev1.PersistentVolumeClaim) Health {
	switch c.Status.Phase {
	case corev1.ClaimBound:
		return Health{Status: Healthy}
	case corev1.ClaimLost:
		return Health{Degraded, fmt.Sprintf("claim lost its volume %s", c.Spec.VolumeName)}
	}
	return Health{Progressing, "claim is not bound yet"}
}

func cmpOrString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func jobHealth(j *batchv1.Job) Health {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobFailed:
			return Health{Degraded, c.Message}
		case batchv1.JobComplete:
			return Health{Healthy, c.Message}
		case batchv1.JobSuspended:
			return Health{Suspended, c.Message}
		}
	}
	if j.Spec.Suspend != nil && *j.Spec.Suspend {
		return Health{Suspended, "Job is suspended"}
	}
	return Health{Progressing, "Job is running"}
}

// cronJobHealth is Argo CD's rule for CronJobs, after Degraded for a
// schedule or time zone that does not parse: Suspended when suspended,
// Degraded when the last scheduled run finished without succeeding,
// Healthy otherwise (a run under way is not Progressing: a CronJob of
// every minute would never settle).
func cronJobHealth(cj *batchv1.CronJob) Health {
	s := cj.Status
	if _, _, err := cronSchedule(cj); err != nil {
		return Health{Degraded, err.Error() + ": no Job is ever started"}
	}
	switch {
	case cj.Spec.Suspend != nil && *cj.Spec.Suspend:
		return Health{Suspended, "CronJob is suspended"}
	case len(s.Active) > 0:
		return Health{Healthy, fmt.Sprintf("CronJob has %d active jobs", len(s.Active))}
	case s.LastScheduleTime != nil && (s.LastSuccessfulTime == nil || s.LastSuccessfulTime.Before(s.LastScheduleTime)):
		return Health{Degraded, "CronJob has not completed its last execution successfully"}
	case s.LastScheduleTime != nil:
		return Health{Healthy, "CronJob has completed its last execution successfully"}
	}
	return Health{Healthy, "CronJob has not run yet"}
}

// crashReasons are container waiting reasons that mean the pod will not come
// up on its own.
var crashReasons = map[string]bool{"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true,
	"CreateContainerConfigError": true, "InvalidImageName": true, "CreateContainerError": true}

func podHealth(p *corev1.Pod) Health {
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && crashReasons[w.Reason] {
			return Health{Degraded, fmt.Sprintf("container %s: %s: %s", cs.Name, w.Reason, w.Message)}
		}
	}
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		return Health{Healthy, p.Status.Message}
	case corev1.PodFailed:
		msg := p.Status.Message
		if msg == "" {
			msg = "pod failed"
		}
		return Health{Degraded, msg}
	case corev1.PodRunning:
		if p.Spec.RestartPolicy != corev1.RestartPolicyAlways && p.Spec.RestartPolicy != "" {
			return Health{Progressing, "pod is running"}
		}
		if podReady(p) {
			return Health{Status: Healthy}
		}
		return Health{Progressing, "pod is running but not ready"}
	}
	return Health{Progressing, "pod is pending"}
}

// RollUp combines the health of several objects (the objects one Git source
// declared): the worst status wins, with its message.
func RollUp(hs ...Health) Health {
	out := Health{Status: Healthy}
	for _, h := range hs {
		if Worse(h.Status, out.Status) {
			out = h
		}
	}
	return out
}

// serviceHealth: a service refused its address or a node port is Degraded;
// one still waiting for them is Progressing.
func serviceHealth(s *corev1.Service) Health {
	if c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionIPAllocated); c != nil && c.Status == metav1.ConditionFalse {
		return Health{Degraded, c.Message}
	}
	if s.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.ClusterIP == "" {
		return Health{Progressing, "waiting for a cluster IP"}
	}
	if servicenet.AllocatesNodePorts(s) {
		for _, p := range s.Spec.Ports {
			if p.NodePort == 0 {
				return Health{Progressing, "waiting for a node port"}
			}
		}
	}
	return Health{Status: Healthy}
}
