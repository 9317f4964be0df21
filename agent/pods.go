package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// syncPod is the agent's reconcile of one pod: level-triggered, from the
// informer's current view. It returns when to look again.
func (a *Agent) syncPod(ctx context.Context, key string) (time.Duration, error) {
	obj, exists, err := a.pods.GetByKey(key)
	if err != nil {
		return 0, err
	}
	if !exists {
		return 0, a.podGone(ctx, key)
	}
	p := obj.(*corev1.Pod)
	a.mu.Lock()
	a.known[key] = p
	a.mu.Unlock()
	if p.DeletionTimestamp != nil {
		return 0, a.terminate(ctx, key, p)
	}
	a.mu.Lock()
	evicting, evicted := a.evicting[p.UID], a.evicted[p.UID]
	a.mu.Unlock()
	switch {
	case evicted && p.Status.Reason != "Evicted":
		return 0, a.evict(ctx, p) // the status did not get through: again
	case evicted:
		return 0, nil
	case evicting:
		return 0, a.evict(ctx, p)
	}
	if p.Status.Phase == corev1.PodFailed && (p.Status.Reason == "Evicted" || p.Status.Reason != "" && len(p.Status.ContainerStatuses) == 0) {
		return 0, nil // rejected at admission or evicted: nothing runs
	}
	if p.Status.Phase == "" || p.Status.Phase == corev1.PodPending && len(p.Status.ContainerStatuses) == 0 {
		if reason, msg := admit(p, a.boundPods(), a.allocatable()); reason != "" {
			return 0, a.reject(ctx, p, reason, msg)
		}
	}
	status, err := a.runner.Sync(ctx, p)
	if err != nil {
		return 0, err
	}
	if !equality.Semantic.DeepEqual(status, p.Status) {
		updated := p.DeepCopy()
		updated.Status = status
		if _, err := a.cfg.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return a.cfg.Resync, nil // a newer pod is on its way through the informer
			}
			return 0, fmt.Errorf("update status of pod %s: %w", key, err)
		}
	}
	if status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed {
		return 5 * a.cfg.Resync, nil
	}
	if w := a.runner.WakeAfter(p.UID); w > 0 && w < a.cfg.Resync {
		return w, nil // a back-off ends: restart or pull again then
	}
	return a.cfg.Resync, nil
}

// followExits syncs a pod as soon as one of its containers exits, as
// containerd's event stream tells, rather than at its next resync; when
// exits may have been missed, every pod.
func (a *Agent) followExits(ctx context.Context) {
	for e := range a.cfg.Runtime.Exits(ctx) {
		a.mu.Lock()
		for key, p := range a.known {
			if e.PodUID == "" || string(p.UID) == e.PodUID {
				a.queue.Add(key)
			}
		}
		a.mu.Unlock()
	}
}

// terminate stops a pod being deleted gracefully, then removes it from the
// API: the deletion is complete once the node says its containers are gone.
func (a *Agent) terminate(ctx context.Context, key string, p *corev1.Pod) error {
	if err := a.runner.Kill(ctx, p, gracePeriod(p)); err != nil {
		return fmt.Errorf("stop pod %s: %w", key, err)
	}
	zero := int64(0)
	err := a.cfg.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("confirm deletion of pod %s: %w", key, err)
	}
	a.forget(key)
	return nil
}

// podGone cleans up after a pod that left the API without a graceful
// deletion: its containers get the pod's own grace period.
func (a *Agent) podGone(ctx context.Context, key string) error {
	a.mu.Lock()
	p, ok := a.known[key]
	a.mu.Unlock()
	if !ok {
		return nil
	}
	if err := a.runner.Kill(ctx, p, gracePeriod(p)); err != nil {
		return fmt.Errorf("stop deleted pod %s: %w", key, err)
	}
	a.log.Info("stopped a deleted pod", "pod", key)
	a.forget(key)
	return nil
}

func (a *Agent) forget(key string) {
	a.mu.Lock()
	if p, ok := a.known[key]; ok {
		delete(a.evicted, p.UID)
		delete(a.evicting, p.UID)
	}
	delete(a.known, key)
	a.mu.Unlock()
}

// gracePeriod is the deletion's grace period, else the pod's, else 30s.
func gracePeriod(p *corev1.Pod) time.Duration {
	switch {
	case p.DeletionGracePeriodSeconds != nil:
		return time.Duration(*p.DeletionGracePeriodSeconds) * time.Second
	case p.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*p.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

func (a *Agent) boundPods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, obj := range a.pods.List() {
		out = append(out, obj.(*corev1.Pod))
	}
	return out
}

// reject fails a pod the node cannot run, with the reason Kubernetes gives.
func (a *Agent) reject(ctx context.Context, p *corev1.Pod, reason, msg string) error {
	a.log.Warn("rejected pod", "pod", p.Namespace+"/"+p.Name, "reason", reason, "message", msg)
	updated := p.DeepCopy()
	updated.Status.Phase, updated.Status.Reason, updated.Status.Message = corev1.PodFailed, reason, msg
	if _, err := a.cfg.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("reject pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}
