package containerd

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/api/services/tasks/v1"
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
	m := resp.Metrics[0]
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
	case *v2.Metrics:
		if s.CPU != nil {
			u.CPUNanos = s.CPU.UsageUsec * 1000
		}
		if s.Memory != nil {
			u.MemoryWorkingSet = workingSet(s.Memory.Usage, s.Memory.InactiveFile)
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
