package containerd

import (
	"cmp"
	"context"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"

	"github.com/keelson/keelson/agent/runtime"
)

// Stats implements runtime.Statser from the metrics containerd's shim reads
// out of the container's cgroup (v1 or v2).
func (r *Runtime) Stats(ctx context.Context, id string) (runtime.Usage, error) {
	ctx = r.ns(ctx)
	// One request, where loading the container and its task first takes
	// three.
	resp, err := r.client.TaskService().Metrics(ctx, &tasks.MetricsRequest{Filters: []string{fmt.Sprintf("id==%q", id)}})
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: %w", id, errgrpc.ToNative(err))
	}
	if len(resp.Metrics) == 0 {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: it is not running: %w", id, runtime.ErrNotFound)
	}
	return usageOf(resp.Metrics[0])
}

// StatsAll implements runtime.Statser with two requests whatever the
// number of containers: the tasks of keelson's namespace, and the metrics
// of them all, kept for those that run (a stopped task has metrics too).
func (r *Runtime) StatsAll(ctx context.Context) (map[string]runtime.Usage, error) {
	ctx = r.ns(ctx)
	list, err := r.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", errgrpc.ToNative(err))
	}
	running := map[string]bool{}
	for _, t := range list.Tasks {
		if t.Status == task.Status_RUNNING || t.Status == task.Status_PAUSED || t.Status == task.Status_PAUSING {
			running[cmp.Or(t.ContainerID, t.ID)] = true // a task's ID is its container's
		}
	}
	resp, err := r.client.TaskService().Metrics(ctx, &tasks.MetricsRequest{})
	if err != nil {
		return nil, fmt.Errorf("stats of the containers: %w", errgrpc.ToNative(err))
	}
	out := make(map[string]runtime.Usage, len(running))
	for _, m := range resp.Metrics {
		if !running[m.ID] {
			continue
		}
		if u, err := usageOf(m); err == nil {
			out[m.ID] = u
		}
	}
	return out, nil
}

// usageOf reads a task's metrics, of cgroup v1 or v2.
func usageOf(m *types.Metric) (runtime.Usage, error) {
	id := m.ID
	data, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: %w", id, err)
	}
	u := runtime.Usage{Time: time.Now()}
	if m.Timestamp != nil {
		u.Time = m.Timestamp.AsTime()
	}
	switch s := data.(type) {
	case *v1.Metrics:
		if s.CPU != nil && s.CPU.Usage != nil {
			u.CPUNanos = s.CPU.Usage.Total
		}
		if s.Memory != nil && s.Memory.Usage != nil {
			u.MemoryWorkingSet = workingSet(s.Memory.Usage.Usage, s.Memory.TotalInactiveFile)
		}
		if s.Pids != nil {
			u.Processes = s.Pids.Current
		}
	case *v2.Metrics:
		if s.CPU != nil {
			u.CPUNanos = s.CPU.UsageUsec * 1000
		}
		if s.Memory != nil {
			u.MemoryWorkingSet = workingSet(s.Memory.Usage, s.Memory.InactiveFile)
		}
		if s.Pids != nil {
			u.Processes = s.Pids.Current
		}
	default:
		return runtime.Usage{}, fmt.Errorf("stats of container %s: unknown metrics type %T", id, data)
	}
	return u, nil
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile > usage {
		return 0
	}
	return usage - inactiveFile
}
