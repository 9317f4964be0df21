package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keelson/keelson/store"
)

// createBatch is how many pods one etcd transaction creates at most: within
// etcd's default --max-txn-ops (128), with room for the store's fence and
// admission's writes (one per quota of the namespace).
const createBatch = 100

// manage creates or deletes pods so that len(pods) becomes spec.replicas, and
// returns the pods as they are after its writes.
func (c *ReplicaSetController) manage(ctx context.Context, key string, owner store.Object, rs *appsv1.ReplicaSet, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	want := 1
	if rs.Spec.Replicas != nil {
		want = int(*rs.Spec.Replicas)
	}
	switch diff := want - len(pods); {
	case diff > 0:
		created, err := c.createPods(ctx, key, owner, rs, diff)
		return append(pods, created...), err
	case diff < 0:
		return c.deletePods(ctx, key, owner, rs, pods, -diff)
	}
	return pods, nil
}

func (c *ReplicaSetController) createPods(ctx context.Context, key string, owner store.Object, rs *appsv1.ReplicaSet, n int) ([]*corev1.Pod, error) {
	var created []*corev1.Pod
	for n > 0 {
		batch := min(n, createBatch)
		ops := make([]store.Op, batch)
		pods := make([]*corev1.Pod, batch)
		for i := range pods {
			pods[i] = newPod(rs, c.kind.gvk)
			ops[i] = store.CreateOp(pods[i])
		}
		c.exp.expectCreations(key, batch)
		err := c.st.Txn(ctx, ops...)
		if errors.Is(err, store.ErrForbidden) && batch > 1 {
			// A quota takes the batch whole or not at all: create
			// one at a time what it still has room for.
			c.exp.expectCreations(key, -batch)
			return c.createEach(ctx, key, owner, created, pods)
		}
		if err != nil {
			c.exp.expectCreations(key, -batch)
			c.rec.Eventf(owner, corev1.EventTypeWarning, "FailedCreate", "Error creating %d pods: %v", batch, err)
			return created, failure{reason: "FailedCreate", err: fmt.Errorf("create %d pods of %s: %w", batch, key, err)}
		}
		created = append(created, pods...)
		n -= batch
	}
	c.rec.Eventf(owner, corev1.EventTypeNormal, "SuccessfulCreate", "Created %d pods", len(created))
	return created, nil
}

// createEach creates pods one at a time (a quota refused the batch) and
// says what it did in the owner's events.
func (c *ReplicaSetController) createEach(ctx context.Context, key string, owner store.Object, created, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	n, err := createEach(ctx, c.st, c.exp, key, pods)
	created = append(created, pods[:n]...)
	if len(created) > 0 {
		c.rec.Eventf(owner, corev1.EventTypeNormal, "SuccessfulCreate", "Created %d pods", len(created))
	}
	if err != nil {
		c.rec.Eventf(owner, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return created, failure{reason: "FailedCreate", err: fmt.Errorf("create pod of %s: %w", key, err)}
	}
	return created, nil
}

func (c *ReplicaSetController) deletePods(ctx context.Context, key string, owner store.Object, rs *appsv1.ReplicaSet, pods []*corev1.Pod, n int) ([]*corev1.Pod, error) {
	sorted := append([]*corev1.Pod(nil), pods...)
	deletionOrder(sorted)
	podsRes := store.MustResource("pods")
	deleted := map[*corev1.Pod]bool{}
	var err error
	for _, p := range sorted[:n] {
		c.exp.expectDeletion(key, p.UID)
		uid := p.UID
		derr := c.st.Delete(ctx, podsRes, p.Namespace, p.Name, &metav1.Preconditions{UID: &uid})
		if derr != nil && !errors.Is(derr, store.ErrNotFound) {
			c.exp.deletionObserved(key, p.UID)
			err = failure{reason: "FailedDelete", err: fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, derr)}
			c.rec.Eventf(owner, corev1.EventTypeWarning, "FailedDelete", "Error deleting pod %s: %v", p.Name, derr)
			break
		}
		if derr != nil {
			c.exp.deletionObserved(key, p.UID)
		}
		deleted[p] = true
	}
	if len(deleted) > 0 {
		c.rec.Eventf(owner, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted %d pods", len(deleted))
	}
	out := pods[:0:0]
	for _, p := range pods {
		if !deleted[p] {
			out = append(out, p)
		}
	}
	return out, err
}

// failure is an error with the reason a ReplicaFailure condition shows.
type failure struct {
	reason string
	err    error
}

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

// status computes the owner's status from its pods; wait is how long until a
// ready pod becomes available (0: none pending).
func (c *ReplicaSetController) status(rs *appsv1.ReplicaSet, sel labels.Selector, pods []*corev1.Pod, manageErr error) (appsv1.ReplicaSetStatus, time.Duration) {
	now := c.now()
	s := *rs.Status.DeepCopy()
	s.Replicas = int32(len(pods))
	s.FullyLabeledReplicas, s.ReadyReplicas, s.AvailableReplicas = 0, 0, 0
	tmpl := labels.SelectorFromSet(rs.Spec.Template.Labels)
	var wait time.Duration
	for _, p := range pods {
		if tmpl.Matches(labels.Set(p.Labels)) {
			s.FullyLabeledReplicas++
		}
		if podReady(p) {
			s.ReadyReplicas++
		}
		if ok, w := podAvailable(p, rs.Spec.MinReadySeconds, now); ok {
			s.AvailableReplicas++
		} else if w > 0 && (wait == 0 || w < wait) {
			wait = w
		}
	}
	s.ObservedGeneration = rs.Generation
	var f failure
	if errors.As(manageErr, &f) {
		setRSCondition(&s, appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: f.reason, Message: f.err.Error()}, now)
	} else if manageErr == nil {
		removeRSCondition(&s, appsv1.ReplicaSetReplicaFailure)
	}
	return s, wait
}

func setRSCondition(s *appsv1.ReplicaSetStatus, c appsv1.ReplicaSetCondition, now time.Time) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status == c.Status {
				c.LastTransitionTime = s.Conditions[i].LastTransitionTime
			} else {
				c.LastTransitionTime = metav1.NewTime(now)
			}
			s.Conditions[i] = c
			return
		}
	}
	c.LastTransitionTime = metav1.NewTime(now)
	s.Conditions = append(s.Conditions, c)
}

func removeRSCondition(s *appsv1.ReplicaSetStatus, t appsv1.ReplicaSetConditionType) {
	out := s.Conditions[:0:0]
	for _, c := range s.Conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	s.Conditions = out
}
