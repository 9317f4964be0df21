package reconciler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

// Reasons of the Deployment conditions, Kubernetes' own.
const (
	ReasonNewRSAvailable     = "NewReplicaSetAvailable"
	ReasonRSUpdated          = "ReplicaSetUpdated"
	ReasonNewRSCreated       = "NewReplicaSetCreated"
	ReasonProgressDeadline   = "ProgressDeadlineExceeded"
	ReasonPaused             = "DeploymentPaused"
	ReasonMinimumAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumUnavailable = "MinimumReplicasUnavailable"
)

// complete reports whether the rollout is done: only the new ReplicaSet has
// pods, as many as wanted, all available.
func complete(r *rollout) bool {
	want := replicasOf(r.d.Spec.Replicas)
	if r.newRS == nil || replicasOf(r.newRS.Spec.Replicas) != want || r.newRS.Status.Replicas != want || r.newRS.Status.AvailableReplicas != want {
		return false
	}
	for _, rs := range r.old {
		if replicasOf(rs.Spec.Replicas) > 0 || rs.Status.Replicas > 0 {
			return false
		}
	}
	return true
}

// writeStatus computes the Deployment's status from its ReplicaSets and
// writes it when it changed; it returns when the progress deadline falls.
func (c *DeploymentController) writeStatus(ctx context.Context, r *rollout) (time.Duration, error) {
	d, now := r.d, c.now()
	s := *d.Status.DeepCopy()
	s.ObservedGeneration = d.Generation
	s.Replicas, s.ReadyReplicas, s.AvailableReplicas, s.UpdatedReplicas = 0, 0, 0, 0
	for _, rs := range r.all {
		s.Replicas += rs.Status.Replicas
		s.ReadyReplicas += rs.Status.ReadyReplicas
		s.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if r.newRS != nil {
		s.UpdatedReplicas = r.newRS.Status.Replicas
	}
	want := replicasOf(d.Spec.Replicas)
	s.UnavailableReplicas = max(0, max(size(r.all), want)-s.AvailableReplicas)
	if s.AvailableReplicas >= want-maxUnavailableOf(d) {
		setDeployCondition(&s, appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumAvailable, "Deployment has minimum availability.", now, false)
	} else {
		setDeployCondition(&s, appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumUnavailable, "Deployment does not have minimum availability.", now, false)
	}
	wait := c.progressing(r, &s, now)
	// The new ReplicaSet's failure to make pods (a quota it meets) is the
	// Deployment's, as in Kubernetes; the spec is valid here.
	if f := newRSFailure(r.newRS); f != nil {
		setDeployCondition(&s, appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, f.Reason, f.Message, now, false)
	} else {
		removeDeployCondition(&s, appsv1.DeploymentReplicaFailure)
	}
	if equality.Semantic.DeepEqual(d.Status, s) {
		return wait, nil
	}
	out := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: d.Name}, Status: s}
	if err := c.st.UpdateStatus(ctx, out); err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("deployment %s: write status: %w", r.key, err)
	}
	return wait, nil
}

// progressing sets the Progressing condition as Kubernetes does, and returns
// how long until the progress deadline passes (0: no deadline pending).
func (c *DeploymentController) progressing(r *rollout, s *appsv1.DeploymentStatus, now time.Time) time.Duration {
	d := r.d
	name := ""
	if r.newRS != nil {
		name = r.newRS.Name
	}
	cur := deployCondition(d.Status, appsv1.DeploymentProgressing)
	switch {
	case d.Spec.Paused:
		setDeployCondition(s, appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonPaused, "Deployment is paused", now, false)
		return 0
	case complete(r):
		setDeployCondition(s, appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSAvailable,
			fmt.Sprintf("ReplicaSet %q has successfully progressed.", name), now, false)
		return 0
	case r.progressed != "" || madeProgress(d.Status, *s) || cur == nil || cur.Reason == ReasonPaused || cur.Reason == ReasonNewRSAvailable:
		reason := r.progressed
		if reason == "" {
			reason = ReasonRSUpdated
		}
		setDeployCondition(s, appsv1.DeploymentProgressing, corev1.ConditionTrue, reason,
			fmt.Sprintf("ReplicaSet %q is progressing.", name), now, true)
	}
	deadline := ptr.Deref(d.Spec.ProgressDeadlineSeconds, defaultProgressDeadlineSeconds)
	cond := deployCondition(*s, appsv1.DeploymentProgressing)
	if deadline == math.MaxInt32 || cond == nil || cond.Status != corev1.ConditionTrue {
		return 0
	}
	left := cond.LastUpdateTime.Add(time.Duration(deadline) * time.Second).Sub(now)
	if left > 0 {
		return left
	}
	setDeployCondition(s, appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonProgressDeadline,
		fmt.Sprintf("ReplicaSet %q has timed out progressing.", name), now, false)
	c.rec.Eventf(d, corev1.EventTypeWarning, ReasonProgressDeadline, "Deployment %q has timed out progressing.", d.Name)
	return 0
}

// madeProgress reports whether pods moved forward since the last status.
func madeProgress(old, cur appsv1.DeploymentStatus) bool {
	return cur.UpdatedReplicas > old.UpdatedReplicas || cur.Replicas < old.Replicas ||
		cur.ReadyReplicas > old.ReadyReplicas || cur.AvailableReplicas > old.AvailableReplicas
}

func deployCondition(s appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// setDeployCondition sets a condition, keeping its transition time while the
// status stays and its update time unless bump or something changed.
func setDeployCondition(s *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time, bump bool) {
	nt := metav1.NewTime(now)
	c := appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: nt, LastTransitionTime: nt}
	if cur := deployCondition(*s, t); cur != nil {
		if cur.Status == status {
			c.LastTransitionTime = cur.LastTransitionTime
			if !bump && cur.Reason == reason && cur.Message == msg {
				c.LastUpdateTime = cur.LastUpdateTime
			}
		}
		*cur = c
		return
	}
	s.Conditions = append(s.Conditions, c)
}

// cleanup deletes the oldest scaled-down ReplicaSets beyond
// revisionHistoryLimit.
func (c *DeploymentController) cleanup(ctx context.Context, r *rollout) error {
	limit := int(ptr.Deref(r.d.Spec.RevisionHistoryLimit, defaultRevisionHistoryLimit))
	var idle []*appsv1.ReplicaSet
	for _, rs := range r.old {
		if replicasOf(rs.Spec.Replicas) == 0 && rs.Status.Replicas == 0 {
			idle = append(idle, rs)
		}
	}
	res := store.MustResource("replicasets.apps")
	for i := 0; i < len(idle)-limit; i++ {
		rs := idle[i]
		uid := rs.UID
		err := c.st.Delete(ctx, res, rs.Namespace, rs.Name, &metav1.Preconditions{UID: &uid})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete old replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
	}
	return nil
}

func removeDeployCondition(s *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	s.Conditions = slices.DeleteFunc(s.Conditions, func(c appsv1.DeploymentCondition) bool { return c.Type == t })
	if len(s.Conditions) == 0 {
		s.Conditions = nil
	}
}

// newRSFailure is the ReplicaFailure condition the new ReplicaSet holds, if
// true.
func newRSFailure(rs *appsv1.ReplicaSet) *appsv1.ReplicaSetCondition {
	if rs == nil {
		return nil
	}
	for i, c := range rs.Status.Conditions {
		if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
			return &rs.Status.Conditions[i]
		}
	}
	return nil
}
