package runtime

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/distribution/reference"

	"github.com/keelson/keelson/agent/registry"
)

// Sentinel errors; methods wrap them with context. Compare with errors.Is.
var (
	// ErrNotFound means no container has that id.
	ErrNotFound = errors.New("runtime: container not found")
	// ErrImageNotFound means the image is not on the node (and, for Pull, not
	// in any registry the node reaches).
	ErrImageNotFound = errors.New("runtime: image not found")
	// ErrStartFailed means the runtime could not start the container's process:
	// its command does not exist or cannot be executed. Kubernetes reports this
	// as the StartError / RunContainerError state.
	ErrStartFailed = errors.New("runtime: container failed to start")
	// ErrInvalid means the spec cannot describe a container (no image, no name).
	ErrInvalid = errors.New("runtime: invalid container spec")
	// ErrUnauthorized means the registry refused every credential the pull
	// presented (or the lack of one).
	ErrUnauthorized = errors.New("runtime: registry refused the credentials")
)

// Label keys the runtime puts on every container it creates, so the agent can
// rebuild its view of the node from the runtime alone after a restart.
const (
	LabelManaged      = "keelson.dev/managed"
	LabelPodUID       = "keelson.dev/pod-uid"
	LabelPodNamespace = "keelson.dev/pod-namespace"
	LabelPodName      = "keelson.dev/pod-name"
	LabelContainer    = "keelson.dev/container"
	LabelAttempt      = "keelson.dev/attempt"
	LabelStartedAt    = "keelson.dev/started-at"
)

// ContainerSpec is what the agent asks the runtime to create.
type ContainerSpec struct {
	// PodUID, PodNamespace and PodName identify the pod. Required.
	PodUID, PodNamespace, PodName string
	// Name is the container's name within the pod. Required.
	Name string
	// Attempt counts the container's restarts; 0 for the first run.
	Attempt int
	// Image is the image reference. Required; it must be on the node.
	Image string
	// Command replaces the image's entrypoint and Args its command, as in
	// Kubernetes: with only Args set, the image's entrypoint runs with them.
	Command, Args []string
	// Env is KEY=VALUE pairs, on top of the image's environment.
	Env []string
	// WorkingDir replaces the image's working directory.
	WorkingDir string
	// NetNSPath is the network namespace to join (the pod's); empty gives the
	// container a namespace of its own with only loopback.
	NetNSPath string
	// IPCNSPath is the IPC namespace to join (the pod's), so a pod's
	// containers share System V IPC and POSIX message queues.
	IPCNSPath string
	// HostNetwork runs the container in the node's network namespace.
	HostNetwork bool
	// Hostname is the container's hostname; PodName when empty.
	Hostname string
	// LogPath receives stdout and stderr; empty discards them.
	LogPath string
	// Mounts are bind mounts into the container: volumes, the pod's
	// /etc/hosts and /etc/resolv.conf.
	Mounts []Mount
	// Resources become the container's cgroup settings.
	Resources Resources
	// Security is the process's identity and privileges.
	Security Security
}

// Mount is a bind mount of a host path into the container.
type Mount struct {
	Source, Destination string
	ReadOnly            bool
}

// Resources are cgroup settings; zero values leave the runtime's defaults.
type Resources struct {
	// CPUShares is the relative CPU weight (cgroup v1 shares; 1024 = 1 CPU).
	CPUShares uint64
	// CPUQuota over CPUPeriod (µs) caps CPU time: 50000/100000 is half a CPU.
	CPUQuota  int64
	CPUPeriod uint64
	// MemoryLimit in bytes; the kernel kills the container beyond it.
	MemoryLimit int64
}

// Security is a container's identity and privileges.
type Security struct {
	// RunAsUser and RunAsGroup replace the image's user when set.
	RunAsUser, RunAsGroup *int64
	// ReadOnlyRootFS mounts the image's filesystem read-only.
	ReadOnlyRootFS bool
	// Privileged gives every capability and device; only when asked.
	Privileged bool
	// CapAdd and CapDrop change the default capability set ("NET_ADMIN" or
	// "CAP_NET_ADMIN"; "ALL" in CapDrop drops all).
	CapAdd, CapDrop []string
}

// State is where a container is in its life.
type State string

// The states a container can be in.
const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// Container is a container as the runtime sees it now.
type Container struct {
	ID    string
	Spec  ContainerSpec // identity fields and Image only
	State State
	// ImageID is the digest of the image the container was created from.
	ImageID string
	// Pid of the main process while running.
	Pid uint32
	// ExitCode is set once State is StateExited.
	ExitCode int32
	// OOMKilled says the kernel killed a process of the container for
	// going over its memory limit: an exited container's reason is then
	// OOMKilled, whatever its exit code, as the CRI reports it.
	OOMKilled                        bool
	CreatedAt, StartedAt, FinishedAt time.Time
}

// Containers runs containers. Every method is safe for concurrent use.
type Containers interface {
	// Create makes a container from spec without starting it and returns its
	// id. Errors: ErrImageNotFound, ErrInvalid.
	Create(ctx context.Context, spec ContainerSpec) (string, error)
	// Start runs the container's process. Errors: ErrNotFound, ErrStartFailed.
	Start(ctx context.Context, id string) error
	// Stop sends SIGTERM, waits up to grace for the process to exit, then
	// sends SIGKILL. Stopping an exited container is not an error.
	// Errors: ErrNotFound.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes the container, killing it first if it runs, and its
	// filesystem. Errors: ErrNotFound.
	Remove(ctx context.Context, id string) error
	// Inspect reports one container. Errors: ErrNotFound.
	Inspect(ctx context.Context, id string) (Container, error)
	// List reports every container keelson created on this node.
	List(ctx context.Context) ([]Container, error)
	// ListPod reports the containers of one pod, by its UID: the runtime
	// finds them by label, without looking at the node's other containers.
	ListPod(ctx context.Context, podUID string) ([]Container, error)
}

// Execer runs a command inside a running container, for exec probes and
// lifecycle hooks.
type Execer interface {
	// Exec runs cmd in the container with its environment and user, waits up
	// to timeout, and returns its combined output (at most 10 KiB) and exit
	// code. Errors: ErrNotFound; a timeout kills the command and is an error.
	Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, int, error)
}

// Usage is a container's resource use at one moment, from its cgroup.
type Usage struct {
	Time time.Time
	// CPUNanos is the CPU time used since the container started.
	CPUNanos uint64
	// MemoryWorkingSet is memory in use less inactive file cache, the figure
	// the kubelet reports and evicts by.
	MemoryWorkingSet uint64
	// Processes is the number of processes and threads in the container's
	// cgroup (pids.current), the figure PID pressure evicts by.
	Processes uint64
}

// Statser reads running containers' resource use.
type Statser interface {
	// Stats reads the container's usage now. Errors: ErrNotFound (not running).
	Stats(ctx context.Context, id string) (Usage, error)
	// StatsAll reads the usage of every running container of keelson's, by
	// container id, at once.
	StatsAll(ctx context.Context) (map[string]Usage, error)
}

// Image is an image on the node.
type Image struct {
	// Ref is the name it was stored under, e.g. localhost/busybox:latest.
	Ref string
	// ID is the digest of its configuration, Kubernetes' imageID.
	ID string
	// Digest is the digest of what Ref points at (its manifest or index),
	// for the repository@digest name; empty when unknown.
	Digest string
	// Size is the image's size in bytes, as the registry serves it; 0 when
	// unknown.
	Size int64
}

// RepoDigest is the image's repository@digest name, as Kubernetes lists
// it in a node's images; empty when the image has no digest.
func (img Image) RepoDigest() string {
	named, err := reference.ParseNormalizedNamed(img.Ref)
	if err != nil || img.Digest == "" {
		return ""
	}
	return named.Name() + "@" + img.Digest
}

// PullOptions are how one pull reaches the registry.
type PullOptions struct {
	// Credentials are tried in order until one is accepted; without any,
	// the pull is anonymous (or uses the node's registries file).
	Credentials []registry.Credential
	// Progress, when set, is called as the pull goes with the bytes
	// fetched so far and the image's total once known (0 before).
	Progress func(fetched, total int64)
}

// Images keeps the node's images.
type Images interface {
	// Image reports an image on the node. Errors: ErrImageNotFound.
	Image(ctx context.Context, ref string) (Image, error)
	// Pull fetches an image from its registry. Errors: ErrImageNotFound,
	// ErrUnauthorized, or the registry's own answer wrapped.
	Pull(ctx context.Context, ref string, opts PullOptions) (Image, error)
	// Import loads an OCI or Docker image archive and returns what it held.
	Import(ctx context.Context, archive io.Reader) ([]Image, error)
	// ListImages reports the images on the node.
	ListImages(ctx context.Context) ([]Image, error)
	// RemoveImage deletes the name ref, and the image's content and
	// unpacked layers once no other name holds them, before it returns.
	// Errors: ErrImageNotFound.
	RemoveImage(ctx context.Context, ref string) error
}

// Exit says a container's main process ended, or, with an empty PodUID,
// that exits may have been missed (the runtime was away): every pod should
// be looked at.
type Exit struct {
	ContainerID, PodUID string
}

// Watcher reports what happens to containers as it happens, so the agent
// need not poll for it.
type Watcher interface {
	// Exits sends an Exit for each container of keelson's whose process
	// ends, or whose process the kernel kills for its memory limit (the
	// container is marked OOMKilled first), until ctx ends, when it closes
	// the channel. It keeps trying when the runtime goes away, and sends an
	// Exit without PodUID once it is back. An OOM kill is only seen while
	// Exits is followed.
	Exits(ctx context.Context) <-chan Exit
}

// Runtime is a node's container runtime: containers, exec and images.
type Runtime interface {
	Containers
	Execer
	Statser
	Images
	Watcher
	// Ready returns nil when the runtime serves requests, else why not:
	// the node is not Ready while it fails.
	Ready(ctx context.Context) error
}
