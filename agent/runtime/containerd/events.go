package containerd

import (
	"context"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"

	"github.com/keelson/keelson/agent/runtime"
)

// Exits implements runtime.Watcher with containerd's event stream: the
// exits of tasks' main processes in keelson's namespace (an exec's exit,
// a probe's, is no container's), each with its pod from the container's
// labels, and the OOM kills the shim sees in the container's cgroup
// (memory.oom_control on cgroup v1, memory.events on v2), which mark the
// container with a label, as the CRI keeps its reason, before the pod is
// woken.
func (r *Runtime) Exits(ctx context.Context) <-chan runtime.Exit {
	out := make(chan runtime.Exit, 64)
	go func() {
		defer close(out)
		for first := true; ctx.Err() == nil; first = false {
			if !first {
				// Back after a break: what exited meanwhile was missed.
				if !send(ctx, out, runtime.Exit{}) {
					return
				}
			}
			r.followExits(ctx, out)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return out
}

// followExits forwards exits until the stream breaks or ctx ends.
func (r *Runtime) followExits(ctx context.Context, out chan<- runtime.Exit) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Filters are or'ed: exits and OOM kills of keelson's namespace.
	envs, errs := r.client.Subscribe(ctx,
		fmt.Sprintf("topic==%q,namespace==%q", "/tasks/exit", r.namespace),
		fmt.Sprintf("topic==%q,namespace==%q", "/tasks/oom", r.namespace))
	for {
		select {
		case env := <-envs:
			ev, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				continue
			}
			var id string
			var oom bool
			switch ev := ev.(type) {
			case *apievents.TaskExit:
				if ev.ID != ev.ContainerID {
					continue
				}
				id = ev.ContainerID
			case *apievents.TaskOOM:
				id, oom = ev.ContainerID, true
			default:
				continue
			}
			e := runtime.Exit{ContainerID: id}
			if c, err := r.client.LoadContainer(r.ns(ctx), id); err == nil {
				if oom {
					// Fails only when the container is gone, or containerd
					// is: then there is no reason left to report.
					_, _ = c.SetLabels(r.ns(ctx), map[string]string{labelOOMKilled: "true"})
				}
				if labels, err := c.Labels(r.ns(ctx)); err == nil {
					e.PodUID = labels[runtime.LabelPodUID]
				}
			}
			if e.PodUID != "" && !send(ctx, out, e) {
				return
			}
		case <-errs:
			return
		case <-ctx.Done():
			return
		}
	}
}

func send(ctx context.Context, out chan<- runtime.Exit, e runtime.Exit) bool {
	select {
	case out <- e:
		return true
	case <-ctx.Done():
		return false
	}
}
