package containerd

import (
	"context"
	"os"
	"strings"
	"sync"

	"github.com/containerd/cgroups/v3"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/keelson/keelson/agent/runtime"
)

func resourceOpts(r runtime.Resources) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if r.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(r.CPUShares))
	}
	if r.CPUQuota > 0 {
		period := r.CPUPeriod
		if period == 0 {
			period = 100000
		}
		opts = append(opts, oci.WithCPUCFS(r.CPUQuota, period))
	}
	if r.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(r.MemoryLimit)))
		if swapLimitable() {
			// No swap beyond the limit, as the kubelet's default NoSwap: a
			// container over its limit is OOM-killed, not swapped out.
			opts = append(opts, oci.WithMemorySwap(r.MemoryLimit))
		}
	}
	return opts
}

// swapLimitable reports whether a container's memory plus swap can be
// held to its memory limit: on cgroup v2 always (runc leaves a missing
// memory.swap.max alone when asked for no swap), on v1 when the kernel
// accounts swap (memory.memsw.* exist; runc fails writing them otherwise).
var swapLimitable = sync.OnceValue(func() bool {
	if cgroups.Mode() == cgroups.Unified {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
})

func securityOpts(s runtime.Security) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if s.Privileged {
		opts = append(opts, oci.WithPrivileged)
	}
	if s.RunAsUser != nil {
		opts = append(opts, oci.WithUserID(uint32(*s.RunAsUser)))
	}
	if s.RunAsGroup != nil {
		gid := uint32(*s.RunAsGroup)
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, sp *oci.Spec) error {
			if sp.Process != nil {
				sp.Process.User.GID = gid
			}
			return nil
		})
	}
	if s.ReadOnlyRootFS {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	for _, c := range s.CapDrop {
		if strings.EqualFold(c, "ALL") {
			opts = append(opts, oci.WithCapabilities(nil))
			break
		}
	}
	if drop := capNames(s.CapDrop); len(drop) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(drop))
	}
	if add := capNames(s.CapAdd); len(add) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(add))
	}
	return opts
}

// capNames turns Kubernetes' capability names (NET_ADMIN) into the kernel's
// (CAP_NET_ADMIN), leaving ALL out.
func capNames(in []string) []string {
	var out []string
	for _, c := range in {
		c = strings.ToUpper(c)
		if c == "ALL" {
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

func mounts(ms []runtime.Mount) []specs.Mount {
	out := make([]specs.Mount, 0, len(ms))
	for _, m := range ms {
		o := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			o = append(o, "ro")
		} else {
			o = append(o, "rw")
		}
		out = append(out, specs.Mount{Type: "bind", Source: m.Source, Destination: m.Destination, Options: o})
	}
	return out
}
