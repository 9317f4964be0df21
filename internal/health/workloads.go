package health

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// reasonProgressDeadline is the reason of a Deployment's Progressing
// condition past its deadline: Kubernetes' own, which the reconciler's
// Deployment controller writes too.
const reasonProgressDeadline = "ProgressDeadlineExceeded"

func deploymentHealth(d *appsv1.Deployment) Health {
	if d.Spec.Paused {
		return Health{Suspended, "Deployment is paused"}
	}
	s := d.Status
	if d.Generation > s.ObservedGeneration {
		return Health{Progressing, "Waiting for rollout to finish: observed deployment generation less than desired generation"}
	}
	if c := deployCondition(s, appsv1.DeploymentProgressing); c != nil && c.Reason == reasonProgressDeadline {
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

func deployCondition(s appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// replicasOf is spec.replicas, which defaults to one.
func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
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

func rsFailure(s appsv1.ReplicaSetStatus) string {
	for _, c := range s.Conditions {
		if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
			return c.Message
		}
	}
	return ""
}

func rcFailure(s corev1.ReplicationControllerStatus) string {
	var failure string
	for _, c := range s.Conditions {
		if c.Type == corev1.ReplicationControllerReplicaFailure && c.Status == corev1.ConditionTrue {
			failure = c.Message
		}
	}
	return failure
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
	if err := scheduleError(cj); err != nil {
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

// scheduleError says why a CronJob's schedule (five fields, or @hourly and
// its kind) or time zone does not parse, as the CronJob controller parses
// them and in its words; nil when both do.
func scheduleError(cj *batchv1.CronJob) error {
	if _, err := cron.ParseStandard(cj.Spec.Schedule); err != nil {
		return fmt.Errorf("unparseable schedule %q: %w", cj.Spec.Schedule, err)
	}
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil {
			return fmt.Errorf("invalid timeZone %q: %w", *tz, err)
		}
	}
	return nil
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

// podReady reports whether the pod's Ready condition is True.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
