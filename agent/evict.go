package agent

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent/pod"
)

// evictionLoop checks memory every interval and, while the node is under
// pressure, evicts one pod a round, as the kubelet's hard eviction does:
// BestEffort pods first, then Burstable pods using more than they asked for,
// largest use first. Guaranteed pods, and pods within their requests, stay.
func (a *Agent) evictionLoop(ctx context.Context, every time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if !a.cfg.Eviction.MemoryAvailable.Below(memAvailable(), memTotal()) {
			continue
		}
		if victim := a.pickVictim(); victim != nil {
			// Through the pod's own queue, so no sync of it runs meanwhile.
			a.mu.Lock()
			a.evicting[victim.UID] = true
			a.mu.Unlock()
			a.queue.Add(victim.Namespace + "/" + victim.Name)
		}
	}
}

// pickVictim orders the running pods by the kubelet's eviction ranking for
// memory and returns the first, or nil when no pod may be evicted.
func (a *Agent) pickVictim() *corev1.Pod {
	usage := a.memoryByPod()
	type candidate struct {
		p        *corev1.Pod
		rank     int
		overUsed int64
	}
	var cs []candidate
	for _, p := range a.boundPods() {
		if !active(p) || p.Status.Phase != corev1.PodRunning {
			continue
		}
		used := usage[string(p.UID)]
		switch pod.QOSClass(p) {
		case corev1.PodQOSBestEffort:
			cs = append(cs, candidate{p, 0, used})
		case corev1.PodQOSBurstable:
			req := podRequests(p)[corev1.ResourceMemory]
			if over := used - req.Value(); over > 0 {
				cs = append(cs, candidate{p, 1, over})
			}
		}
	}
	if len(cs) == 0 {
		return nil
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].rank != cs[j].rank {
			return cs[i].rank < cs[j].rank
		}
		return cs[i].overUsed > cs[j].overUsed
	})
	return cs[0].p
}

// memoryByPod sums the latest working-set samples of each pod's containers.
func (a *Agent) memoryByPod() map[string]int64 {
	s := a.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for id, spec := range s.names {
		out[spec.PodUID] += int64(s.last[id].MemoryWorkingSet)
	}
	return out
}

// evict stops the pod at once and fails it with the reason Kubernetes gives,
// so its controller replaces it.
func (a *Agent) evict(ctx context.Context, p *corev1.Pod) error {
	msg := fmt.Sprintf("The node was low on resource: memory. Threshold quantity: %s, available: %s.",
		a.cfg.Eviction.MemoryAvailable, resource.NewQuantity(memAvailable(), resource.BinarySI))
	a.Event(p, corev1.EventTypeWarning, "Evicted", msg)
	a.log.Warn("evicting pod: the node is low on memory", "pod", p.Namespace+"/"+p.Name, "qos", pod.QOSClass(p))
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
