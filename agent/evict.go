package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/agent/pod"
	"github.com/keelson/keelson/agent/runtime"
)

// evictionLoop looks at the node's eviction signals every interval and,
// while one is under its hard threshold, evicts one pod a round, as the
// kubelet's eviction manager does: for memory, BestEffort pods first, then
// Burstable pods using more than they asked for; for process IDs, the pods
// with the most processes; for the data dir's file system, once what pods
// that are gone or finished left behind is removed, the pods using the most
// ephemeral storage beyond their requests. See the rank functions.
func (a *Agent) evictionLoop(ctx context.Context, every time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		a.evictionRound(ctx)
	}
}

// evictionRound chooses at most one pod to evict, under the first signal
// (memory, nodefs, pids) that crossed its threshold and has a pod to
// evict. While a pod chosen earlier is still being stopped it chooses
// none: what that frees is not seen yet, as the kubelet waits for a
// victim's cleanup before it looks again.
func (a *Agent) evictionRound(ctx context.Context) {
	ev := a.stats.eviction
	var under []signal
	for _, s := range a.signals() {
		if s.under() {
			ev.cross(s.condition)
			under = append(under, s)
		}
	}
	if len(under) == 0 || a.evictionUnderWay() {
		return
	}
	for _, s := range under {
		if s.resource == corev1.ResourceEphemeralStorage {
			a.reclaimDisk(ctx)
			if s = a.observe(s.resource); s.under() {
				a.removeUnusedImages(ctx, a.boundPods(), func() bool { return a.observe(s.resource).under() })
				s = a.observe(s.resource)
			}
			if !s.under() {
				continue // the node's own garbage was enough
			}
		}
		victim, msg := a.pickVictim(s)
		if victim == nil {
			continue
		}
		ev.setReason(victim.UID, msg)
		// Through the pod's own queue, so no sync of it runs meanwhile.
		a.mu.Lock()
		a.evicting[victim.UID] = true
		a.mu.Unlock()
		a.queue.Add(victim.Namespace + "/" + victim.Name)
		return
	}
}

// evictionUnderWay reports whether a pod chosen for eviction is not yet
// stopped and failed, and forgets the messages of pods whose eviction is
// over.
func (a *Agent) evictionUnderWay() bool {
	pending := map[types.UID]bool{}
	a.mu.Lock()
	for uid := range a.evicting {
		pending[uid] = true
	}
	for uid := range a.evicted {
		pending[uid] = false
	}
	a.mu.Unlock()
	a.stats.eviction.forgetReasons(func(uid types.UID) bool { _, ok := pending[uid]; return ok })
	for _, p := range a.boundPods() {
		if chosen, ok := pending[p.UID]; ok && (chosen || p.Status.Reason != "Evicted") {
			return true
		}
	}
	return false
}

// pickVictim ranks the running pods by what they use of the signal's
// resource and returns the first with the message of its eviction, or nil
// when the signal evicts none of them.
func (a *Agent) pickVictim(s signal) (*corev1.Pod, string) {
	var pods []*corev1.Pod
	for _, p := range a.boundPods() {
		if active(p) && p.Status.Phase == corev1.PodRunning {
			pods = append(pods, p)
		}
	}
	var use podUsage
	var ranked []*corev1.Pod
	switch s.resource {
	case corev1.ResourceMemory:
		use = a.stats.byPod(func(u runtime.Usage) uint64 { return u.MemoryWorkingSet })
		ranked = rankMemory(pods, use)
	case corev1.ResourceEphemeralStorage:
		use = a.diskByPod(pods)
		ranked = rankDisk(pods, use)
	case resourcePIDs:
		use = a.stats.byPod(func(u runtime.Usage) uint64 { return u.Processes })
		ranked = rankPIDs(pods, use)
	}
	if len(ranked) == 0 {
		return nil, ""
	}
	return ranked[0], s.message(ranked[0], use[ranked[0].UID])
}

// evict stops the pod at once and fails it with the reason Kubernetes gives,
// so its controller replaces it.
func (a *Agent) evict(ctx context.Context, p *corev1.Pod) error {
	msg, ok := a.stats.eviction.reason(p.UID)
	if !ok { // not expected: the loop records the message before it chooses
		msg = "The node was low on resources."
	}
	a.Event(p, corev1.EventTypeWarning, "Evicted", msg)
	a.log.Warn("evicting pod", "pod", p.Namespace+"/"+p.Name, "qos", pod.QOSClass(p), "reason", msg)
	a.mu.Lock()
	a.evicted[p.UID] = true // from now on nothing of it runs here again
	delete(a.evicting, p.UID)
	a.mu.Unlock()
	if err := a.runner.Kill(ctx, p, 0); err != nil {
		return err
	}
	updated := p.DeepCopy()
	updated.Status.Phase, updated.Status.Reason, updated.Status.Message = corev1.PodFailed, "Evicted", msg
	for i := range updated.Status.ContainerStatuses {
		cs := &updated.Status.ContainerStatuses[i]
		cs.Ready, cs.State = false, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Evicted"}}
	}
	if _, err := a.cfg.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("mark pod %s/%s evicted: %w", p.Namespace, p.Name, err)
	}
	return nil
}
