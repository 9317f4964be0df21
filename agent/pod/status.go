package pod

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent/runtime"
)

// status computes the pod's status from what the runtime has, as the kubelet
// does: container states, phase, conditions, IPs.
func (r *Runner) status(st *syncState) corev1.PodStatus {
	p := st.pod
	old := p.Status
	out := corev1.PodStatus{
		HostIP:    r.cfg.HostIP,
		StartTime: old.StartTime,
		QOSClass:  QOSClass(p),
	}
	if out.StartTime == nil {
		now := apiTime(time.Now())
		out.StartTime = &now
	}
	if r.cfg.HostIP != "" {
		out.HostIPs = []corev1.HostIP{{IP: r.cfg.HostIP}}
	}
	if st.sandbox != nil && st.sandbox.ip != "" {
		out.PodIP = st.sandbox.ip
		out.PodIPs = []corev1.PodIP{{IP: st.sandbox.ip}}
	}

	initDone := true
	initFailed := false
	for _, c := range p.Spec.InitContainers {
		cs := r.containerStatus(st, c, "PodInitializing")
		out.InitContainerStatuses = append(out.InitContainerStatuses, cs)
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initDone = false
			if cs.State.Terminated != nil && p.Spec.RestartPolicy == corev1.RestartPolicyNever {
				initFailed = true
			}
		}
	}
	waitingReason := "ContainerCreating"
	if !initDone {
		waitingReason = "PodInitializing"
	}
	allReady, anyRunning, allDone, anyFailed, anyStarted := true, false, true, false, false
	for _, c := range p.Spec.Containers {
		cs := r.containerStatus(st, c, waitingReason)
		if !initDone {
			cs = corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}
		}
		out.ContainerStatuses = append(out.ContainerStatuses, cs)
		allReady = allReady && cs.Ready
		if cs.State.Running != nil {
			anyRunning, anyStarted = true, true
		}
		if cs.LastTerminationState.Terminated != nil {
			anyStarted = true // restarting counts as running, as in Kubernetes
		}
		if t := cs.State.Terminated; t != nil {
			anyStarted = true
			if t.ExitCode != 0 {
				anyFailed = true
			}
			if cur, ok := st.latest(c.Name); ok && st.restarts(p.Spec.RestartPolicy, cur) {
				allDone = false
			}
		} else {
			allDone = false
		}
	}

	switch {
	case initFailed:
		out.Phase = corev1.PodFailed
	case !initDone || st.sandboxErr != nil:
		out.Phase = corev1.PodPending
	case allDone && len(p.Spec.Containers) > 0 && anyFailed:
		out.Phase = corev1.PodFailed
	case allDone && len(p.Spec.Containers) > 0:
		out.Phase = corev1.PodSucceeded
	case anyRunning || anyStarted:
		out.Phase = corev1.PodRunning
	default:
		out.Phase = corev1.PodPending
	}
	ready := allReady && out.Phase == corev1.PodRunning
	out.Conditions = conditions(old.Conditions, map[corev1.PodConditionType]bool{
		corev1.PodScheduled:    true,
		corev1.PodInitialized:  initDone,
		corev1.ContainersReady: ready,
		corev1.PodReady:        ready,
	}, st)
	return out
}

// containerStatus reports one container from its newest attempt.
func (r *Runner) containerStatus(st *syncState, c corev1.Container, defaultWaiting string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	cur, ok := st.latest(c.Name)
	if ok {
		cs.ContainerID = "containerd://" + cur.ID
		cs.ImageID = cur.ImageID
		cs.RestartCount = int32(cur.Spec.Attempt)
		if prev, ok := st.previous(c.Name, cur.Spec.Attempt); ok {
			cs.LastTerminationState = st.state(prev)
		}
		cs.State = st.state(cur)
	}
	if w, ok := st.waiting[c.Name]; ok {
		if cs.State.Terminated != nil && w.Reason == "CrashLoopBackOff" {
			cs.LastTerminationState = cs.State
		}
		cs.State = corev1.ContainerState{Waiting: &w}
	}
	if cs.State.Running == nil && cs.State.Terminated == nil && cs.State.Waiting == nil {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: defaultWaiting}
		if st.sandboxErr != nil {
			cs.State.Waiting.Message = st.sandboxErr.Error()
		}
	}
	running := cs.State.Running != nil
	ready, started := running, running
	if ok && running {
		if probes, found := st.pr.probes[cur.ID]; found {
			pr, st, _ := probes.get()
			ready, started = pr && st, st
		} else if hasProbes(&c) {
			ready, started = c.ReadinessProbe == nil && c.StartupProbe == nil, c.StartupProbe == nil
		}
	}
	cs.Ready = ready
	cs.Started = &started
	return cs
}

// state is a runtime container's state in the API's terms.
func (st *syncState) state(c runtime.Container) corev1.ContainerState {
	switch c.State {
	case runtime.StateRunning:
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: apiTime(c.StartedAt)}}
	case runtime.StateExited:
		reason := "Completed"
		switch {
		case c.OOMKilled:
			reason = "OOMKilled"
		case c.ExitCode != 0:
			reason = "Error"
		}
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: c.ExitCode, Reason: reason, ContainerID: "containerd://" + c.ID,
			StartedAt: apiTime(c.StartedAt), FinishedAt: apiTime(c.FinishedAt),
		}}
	}
	if msg, failed := st.pr.startErrors[c.ID]; failed {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 128, Reason: "StartError", Message: msg, ContainerID: "containerd://" + c.ID,
			FinishedAt: apiTime(c.CreatedAt),
		}}
	}
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
}

// conditions sets each condition's status, keeping lastTransitionTime from
// the previous status where the status did not change.
func conditions(old []corev1.PodCondition, want map[corev1.PodConditionType]bool, st *syncState) []corev1.PodCondition {
	prev := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range old {
		prev[c.Type] = c
	}
	now := apiTime(time.Now())
	var out []corev1.PodCondition
	for _, t := range []corev1.PodConditionType{corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		status := corev1.ConditionFalse
		if want[t] {
			status = corev1.ConditionTrue
		}
		c := corev1.PodCondition{Type: t, Status: status, LastTransitionTime: now}
		if p, ok := prev[t]; ok && p.Status == status {
			c.LastTransitionTime = p.LastTransitionTime
		}
		if t == corev1.PodScheduled {
			if p, ok := prev[t]; ok {
				c = p // the scheduler's condition
			}
		}
		if status == corev1.ConditionFalse && (t == corev1.PodReady || t == corev1.ContainersReady) {
			c.Reason = "ContainersNotReady"
		}
		if status == corev1.ConditionFalse && t == corev1.PodInitialized {
			c.Reason = "ContainersNotInitialized"
		}
		if st.sandboxErr != nil && t == corev1.PodReady {
			c.Message = st.sandboxErr.Error()
		}
		out = append(out, c)
	}
	return out
}

// apiTime is t as the API keeps it, to the second, so a status read back
// compares equal to the one computed from the same facts.
func apiTime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t).Rfc3339Copy()
}
