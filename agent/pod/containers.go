package pod

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/agent/registry"
	"github.com/keelson/keelson/agent/runtime"
)

// syncState is one Sync's view of a pod: its sandbox, the runtime's
// containers, and why containers that should run do not.
type syncState struct {
	pod        *corev1.Pod
	pr         *podRunner
	sandbox    *sandbox
	sandboxErr error
	have       []runtime.Container
	waiting    map[string]corev1.ContainerStateWaiting
}

// latest is the newest attempt of the named container, if any.
func (st *syncState) latest(name string) (runtime.Container, bool) {
	var out runtime.Container
	found := false
	for _, c := range st.have {
		if c.Spec.Name == name && (!found || c.Spec.Attempt > out.Spec.Attempt) {
			out, found = c, true
		}
	}
	return out, found
}

// previous is the attempt before the newest, kept for `logs --previous`.
func (st *syncState) previous(name string, attempt int) (runtime.Container, bool) {
	for _, c := range st.have {
		if c.Spec.Name == name && c.Spec.Attempt == attempt-1 {
			return c, true
		}
	}
	return runtime.Container{}, false
}

// runContainers starts what should run now: the next init container while
// any remain, then every app container, restarting exited ones as the
// restart policy says, with back-off.
func (r *Runner) runContainers(ctx context.Context, st *syncState) {
	p := st.pod
	for i := range p.Spec.InitContainers {
		c := &p.Spec.InitContainers[i]
		cur, ok := st.latest(c.Name)
		switch {
		case !ok:
			r.start(ctx, st, c, 0)
			return
		case st.leftover(cur):
			r.startLeftover(ctx, st, c, cur)
			return
		case cur.State == runtime.StateExited && cur.ExitCode == 0:
			continue
		case cur.State == runtime.StateExited || st.failedToStart(cur):
			if p.Spec.RestartPolicy != corev1.RestartPolicyNever {
				r.restart(ctx, st, c, cur)
			}
			return
		default:
			return // running: wait for it
		}
	}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		cur, ok := st.latest(c.Name)
		switch {
		case !ok:
			r.start(ctx, st, c, 0)
		case st.leftover(cur):
			r.startLeftover(ctx, st, c, cur)
		case (cur.State == runtime.StateExited || st.failedToStart(cur)) && st.restarts(p.Spec.RestartPolicy, cur):
			r.restart(ctx, st, c, cur)
		}
	}
}

// leftover reports a container created and never started, not by this
// runner's failed start: an earlier agent stopped (or was killed) between
// creating and starting it. Left alone it would wait in ContainerCreating
// for ever.
func (st *syncState) leftover(c runtime.Container) bool {
	_, failed := st.pr.startErrors[c.ID]
	return c.State == runtime.StateCreated && !failed
}

// startLeftover replaces a leftover container by the same attempt, started:
// it never ran, so it is no restart and gets no back-off.
func (r *Runner) startLeftover(ctx context.Context, st *syncState, c *corev1.Container, cur runtime.Container) {
	r.log.Info("starting a container that an earlier agent created but did not start", "pod", st.pod.Namespace+"/"+st.pod.Name, "container", c.Name)
	if err := r.cfg.Runtime.Remove(ctx, cur.ID); err != nil {
		st.waiting[c.Name] = corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: "remove the container an earlier agent left: " + err.Error()}
		return
	}
	st.have = slices.DeleteFunc(st.have, func(h runtime.Container) bool { return h.ID == cur.ID })
	r.start(ctx, st, c, cur.Spec.Attempt)
}

func (st *syncState) failedToStart(c runtime.Container) bool {
	_, failed := st.pr.startErrors[c.ID]
	return c.State == runtime.StateCreated && failed
}

func (st *syncState) restarts(policy corev1.RestartPolicy, c runtime.Container) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return c.ExitCode != 0 || st.failedToStart(c)
	}
	return true
}

// backoffMax caps the restart back-off, as the kubelet's.
const backoffMax = 5 * time.Minute

// backoff is the wait before restart number attempt+1: the base (10s)
// doubling to 5 minutes.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for range attempt {
		d *= 2
		if d >= backoffMax {
			return backoffMax
		}
	}
	return d
}

// restart starts the next attempt once the back-off since the last exit has
// passed, keeping the last dead container (for its logs) and no older one.
func (r *Runner) restart(ctx context.Context, st *syncState, c *corev1.Container, cur runtime.Container) {
	ended := cur.FinishedAt
	if ended.IsZero() {
		ended = cur.CreatedAt
	}
	attempt := cur.Spec.Attempt
	if !cur.StartedAt.IsZero() && ended.Sub(cur.StartedAt) >= 10*time.Minute {
		attempt = 0 // it ran well for a while: the back-off starts over
	}
	delay := backoff(r.cfg.BackoffBase, attempt)
	if wait := delay - time.Since(ended); wait > 0 {
		st.pr.waitUntil(ended.Add(delay))
		st.waiting[c.Name] = corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.Name, st.pod.Name, st.pod.Namespace, st.pod.UID),
		}
		r.recordf(st.pod, corev1.EventTypeWarning, "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, st.pod.Name, st.pod.Namespace, st.pod.UID))
		return
	}
	if old, ok := st.previous(c.Name, cur.Spec.Attempt); ok {
		_ = r.cfg.Runtime.Remove(ctx, old.ID)
		delete(st.pr.startErrors, old.ID)
	}
	r.start(ctx, st, c, cur.Spec.Attempt+1)
}

// start ensures the image, creates and starts one attempt of a container; what
// goes wrong becomes the container's waiting reason.
func (r *Runner) start(ctx context.Context, st *syncState, c *corev1.Container, attempt int) {
	img := r.puller.ensure(ctx, st.pr, c, func() ([]registry.Credential, error) { return r.pullCredentials(ctx, st.pod, c.Image) })
	r.record(st.pod, img.event)
	if img.waiting != nil {
		st.waiting[c.Name] = *img.waiting
		return
	}
	image := img.ref
	spec, err := r.containerSpec(ctx, st.pod, st.sandbox, c, attempt, image)
	if err != nil {
		st.waiting[c.Name] = corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
		r.recordf(st.pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return
	}
	id, err := r.cfg.Runtime.Create(ctx, spec)
	if err != nil {
		st.waiting[c.Name] = corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
		r.recordf(st.pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return
	}
	r.recordf(st.pod, corev1.EventTypeNormal, "Created", "Created container: "+c.Name)
	created := runtime.Container{ID: id, Spec: spec, State: runtime.StateCreated, CreatedAt: time.Now()}
	if err := r.cfg.Runtime.Start(ctx, id); err != nil {
		st.pr.startErrors[id] = err.Error()
		r.log.Warn("container failed to start", "pod", st.pod.Namespace+"/"+st.pod.Name, "container", c.Name, "err", err)
		r.recordf(st.pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
	} else {
		r.recordf(st.pod, corev1.EventTypeNormal, "Started", "Started container "+c.Name)
	}
	if now, err := r.cfg.Runtime.Inspect(ctx, id); err == nil {
		created = now
	}
	st.have = append(st.have, created)
	if created.State == runtime.StateRunning && c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		t := probeTarget{rt: r.cfg.Runtime, id: id, ip: st.sandbox.ip, container: c}
		if err := t.hook(ctx, c.Lifecycle.PostStart, gracePeriod(st.pod)); err != nil {
			// As the kubelet: a failed postStart hook kills the container.
			r.log.Warn("postStart hook failed, killing the container", "pod", st.pod.Namespace+"/"+st.pod.Name, "container", c.Name, "err", err)
			r.recordf(st.pod, corev1.EventTypeWarning, "FailedPostStartHook", fmt.Sprintf("PostStartHook failed: %v", err))
			_ = r.cfg.Runtime.Stop(ctx, id, gracePeriod(st.pod))
			if now, err := r.cfg.Runtime.Inspect(ctx, id); err == nil {
				st.replace(now)
			}
		}
	}
}

// replace puts a fresher view of a container into the state.
func (st *syncState) replace(c runtime.Container) {
	for i := range st.have {
		if st.have[i].ID == c.ID {
			st.have[i] = c
		}
	}
}
