package containerd

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"

	"github.com/keelson/keelson/agent/logs"
	"github.com/keelson/keelson/agent/runtime"
)

// DefaultNamespace is the containerd namespace keelson keeps its containers
// and images in, apart from anything else on the machine.
const DefaultNamespace = "keelson"

// Runtime is runtime.Runtime on containerd.
type Runtime struct {
	client      *containerd.Client
	namespace   string
	snapshotter string
	logDriver   string
	hosts       hosts
	calls       *atomic.Int64
}

// Option configures a Runtime.
type Option func(*Runtime)

// WithLogDriver makes binary (keelson itself) the logging binary containerd's
// shim runs for each container: output is kept in the CRI log format, rotated
// by size, and logging goes on while the agent restarts. Without it, the shim
// appends raw output to the log file.
func WithLogDriver(binary string) Option { return func(r *Runtime) { r.logDriver = binary } }

// WithCallCount counts each request the runtime makes to containerd (gRPC
// calls, not the event stream's messages) in n, for benchmarks of the
// agent's cost.
func WithCallCount(n *atomic.Int64) Option { return func(r *Runtime) { r.calls = n } }

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to the containerd socket; containers and images live in the
// given containerd namespace (DefaultNamespace when empty).
func New(ctx context.Context, socket, namespace string, opts ...Option) (*Runtime, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	r := &Runtime{namespace: namespace, snapshotter: "overlayfs"}
	for _, o := range opts {
		o(r)
	}
	copts := []containerd.Opt{containerd.WithDefaultNamespace(namespace), containerd.WithTimeout(10 * time.Second)}
	if r.calls != nil {
		count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			r.calls.Add(1)
			return invoke(ctx, method, req, reply, cc, opts...)
		}
		copts = append(copts, containerd.WithExtraDialOpts([]grpc.DialOption{grpc.WithChainUnaryInterceptor(count)}))
	}
	client, err := containerd.New(socket, copts...)
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", socket, err)
	}
	r.client = client
	return r, nil
}

// Close closes the connection to containerd; containers keep running.
func (r *Runtime) Close() error { return r.client.Close() }

// Version is the containerd daemon's version, for the Node's nodeInfo.
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.client.Version(r.ns(ctx))
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.namespace)
}

// Create implements runtime.Containers.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	ctx = r.ns(ctx)
	if spec.Image == "" || spec.Name == "" || spec.PodUID == "" {
		return "", fmt.Errorf("%w: image, container name and pod uid are required", runtime.ErrInvalid)
	}
	image, err := r.client.GetImage(ctx, spec.Image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "", fmt.Errorf("image %s: %w", spec.Image, runtime.ErrImageNotFound)
		}
		return "", fmt.Errorf("image %s: %w", spec.Image, err)
	}
	unpacked, err := image.IsUnpacked(ctx, r.snapshotter)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", spec.Image, err)
	}
	if !unpacked {
		if err := image.Unpack(ctx, r.snapshotter); err != nil {
			return "", fmt.Errorf("unpack image %s: %w", spec.Image, err)
		}
	}
	argv, err := processArgs(ctx, image, spec)
	if err != nil {
		return "", err
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(image),
		oci.WithProcessArgs(argv...),
		oci.WithEnv(spec.Env),
		oci.WithHostname(cmp.Or(spec.Hostname, spec.PodName)),
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	switch {
	case spec.HostNetwork:
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	case spec.NetNSPath != "":
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}))
	}
	if spec.IPCNSPath != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: spec.IPCNSPath}))
	}
	opts = append(opts, resourceOpts(spec.Resources)...)
	opts = append(opts, securityOpts(spec.Security)...)
	if len(spec.Mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts(spec.Mounts)))
	}
	id := newID()
	lbls := labels(spec)
	if cfg, err := image.Config(ctx); err == nil {
		lbls[labelImageID] = cfg.Digest.String() // so an inspect needs no image lookups
	}
	_, err = r.client.NewContainer(ctx, id,
		containerd.WithImage(image),
		containerd.WithSnapshotter(r.snapshotter),
		containerd.WithNewSnapshot(id, image),
		containerd.WithNewSpec(opts...),
		containerd.WithContainerLabels(lbls),
	)
	if err != nil {
		return "", fmt.Errorf("create container %s of pod %s/%s: %w", spec.Name, spec.PodNamespace, spec.PodName, err)
	}
	return id, nil
}

// processArgs applies Kubernetes' rule: Command replaces the entrypoint, Args
// the command; Args alone run after the image's entrypoint.
func processArgs(ctx context.Context, image containerd.Image, spec runtime.ContainerSpec) ([]string, error) {
	if len(spec.Command) > 0 {
		return append(append([]string(nil), spec.Command...), spec.Args...), nil
	}
	cfg, err := image.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", spec.Image, err)
	}
	argv := append([]string(nil), cfg.Config.Entrypoint...)
	if len(spec.Args) > 0 {
		argv = append(argv, spec.Args...)
	} else {
		argv = append(argv, cfg.Config.Cmd...)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: image %s has no command and the container sets none", runtime.ErrInvalid, spec.Image)
	}
	return argv, nil
}

func labels(spec runtime.ContainerSpec) map[string]string {
	l := map[string]string{
		runtime.LabelManaged:      "true",
		runtime.LabelPodUID:       spec.PodUID,
		runtime.LabelPodNamespace: spec.PodNamespace,
		runtime.LabelPodName:      spec.PodName,
		runtime.LabelContainer:    spec.Name,
		runtime.LabelAttempt:      strconv.Itoa(spec.Attempt),
	}
	if spec.LogPath != "" {
		l[labelLogPath] = spec.LogPath
	}
	return l
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *Runtime) load(ctx context.Context, id string) (containerd.Container, error) {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	return c, nil
}

// Start implements runtime.Containers.
func (r *Runtime) Start(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	creator := cio.NullIO
	if path := info.Labels[labelLogPath]; path != "" {
		creator = cio.LogFile(path)
		if r.logDriver != "" {
			creator = cio.BinaryIO(r.logDriver, logs.DriverArgs(path, logs.DefaultMaxSize, logs.DefaultMaxFiles))
		}
	}
	task, err := c.NewTask(ctx, creator)
	if err != nil {
		return fmt.Errorf("start container %s: %w: %v", id, runtime.ErrStartFailed, err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(ctx, containerd.WithProcessKill)
		return fmt.Errorf("start container %s: %w: %v", id, runtime.ErrStartFailed, err)
	}
	_, err = c.SetLabels(ctx, map[string]string{runtime.LabelStartedAt: time.Now().UTC().Format(time.RFC3339Nano)})
	return err
}

// labelLogPath keeps the log path with the container, for Start;
// labelImageID the image's configuration digest, for inspections;
// labelOOMKilled marks a container the kernel OOM-killed a process of.
const (
	labelLogPath   = "keelson.dev/log-path"
	labelImageID   = "keelson.dev/image-id"
	labelOOMKilled = "keelson.dev/oom-killed"
)

// Stop implements runtime.Containers.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil // never started, or already cleaned up
	}
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("wait for container %s: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err == nil && st.Status == containerd.Stopped {
		return nil
	}
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("SIGTERM container %s: %w", id, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exited:
		return nil
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("SIGKILL container %s: %w", id, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Remove implements runtime.Containers.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	if task, err := c.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task of container %s: %w", id, err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
		}
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// Inspect implements runtime.Containers.
func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.Container, error) {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return runtime.Container{}, err
	}
	return r.inspect(ctx, c)
}

// inspect reads a container loaded or listed just now: its metadata as it
// came, and its task's state.
func (r *Runtime) inspect(ctx context.Context, c containerd.Container) (runtime.Container, error) {
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return runtime.Container{}, fmt.Errorf("container %s: %w", c.ID(), runtime.ErrNotFound)
		}
		return runtime.Container{}, fmt.Errorf("container %s: %w", c.ID(), err)
	}
	l := info.Labels
	attempt, _ := strconv.Atoi(l[runtime.LabelAttempt])
	out := runtime.Container{
		ID: c.ID(),
		Spec: runtime.ContainerSpec{
			PodUID: l[runtime.LabelPodUID], PodNamespace: l[runtime.LabelPodNamespace],
			PodName: l[runtime.LabelPodName], Name: l[runtime.LabelContainer],
			Attempt: attempt, Image: info.Image,
		},
		State:     runtime.StateCreated,
		CreatedAt: info.CreatedAt,
		ImageID:   l[labelImageID],
		OOMKilled: l[labelOOMKilled] == "true",
	}
	out.StartedAt, _ = time.Parse(time.RFC3339Nano, l[runtime.LabelStartedAt])
	if out.ImageID == "" { // made before the label was
		if img, err := c.Image(ctx); err == nil {
			if cfg, err := img.Config(ctx); err == nil {
				out.ImageID = cfg.Digest.String()
			}
		}
	}
	// One request for the task's state, where the client's Task and Status
	// take two.
	resp, err := r.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: c.ID()})
	if err != nil {
		err = errgrpc.ToNative(err)
	}
	if errdefs.IsNotFound(err) {
		if !out.StartedAt.IsZero() {
			// Started once, and its task is gone: containerd's state did not
			// survive (a reboot). The process is dead; how it ended is unknown.
			out.State, out.ExitCode, out.FinishedAt = runtime.StateExited, 255, out.StartedAt
		}
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("container %s task: %w", c.ID(), err)
	}
	p := resp.GetProcess()
	switch p.GetStatus() {
	case task.Status_RUNNING, task.Status_PAUSED, task.Status_PAUSING:
		out.State, out.Pid = runtime.StateRunning, p.GetPid()
	case task.Status_STOPPED:
		out.State, out.ExitCode = runtime.StateExited, int32(p.GetExitStatus())
		if at := p.GetExitedAt(); at != nil {
			out.FinishedAt = at.AsTime()
		}
	case task.Status_CREATED:
		out.State = runtime.StateCreated
	default:
		out.State = runtime.StateUnknown
	}
	return out, nil
}

// List implements runtime.Containers.
func (r *Runtime) List(ctx context.Context) ([]runtime.Container, error) {
	return r.list(ctx, fmt.Sprintf("labels.%q==true", runtime.LabelManaged))
}

// ListPod implements runtime.Containers: containerd filters by the pod's
// label, so the cost is the pod's containers, not the node's.
func (r *Runtime) ListPod(ctx context.Context, podUID string) ([]runtime.Container, error) {
	return r.list(ctx, fmt.Sprintf("labels.%q==true,labels.%q==%q", runtime.LabelManaged, runtime.LabelPodUID, podUID))
}

// Ready implements runtime.Runtime: containerd answers a version request.
func (r *Runtime) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(r.ns(ctx), 5*time.Second)
	defer cancel()
	if _, err := r.client.Version(ctx); err != nil {
		return fmt.Errorf("container runtime is down: %w", err)
	}
	return nil
}

func (r *Runtime) list(ctx context.Context, filter string) ([]runtime.Container, error) {
	ctx = r.ns(ctx)
	cs, err := r.client.Containers(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]runtime.Container, 0, len(cs))
	for _, c := range cs {
		ci, err := r.inspect(ctx, c)
		if errors.Is(err, runtime.ErrNotFound) {
			continue // removed while listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ci)
	}
	return out, nil
}

// isNotFoundMessage recognises registries' and resolvers' ways of saying an
// image does not exist, which do not all map to errdefs.ErrNotFound.
func isNotFoundMessage(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "not found") || strings.Contains(msg, "manifest unknown")
}
