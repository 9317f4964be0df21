package pod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/keelson/keelson/agent/network"
	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/internal/servicenet"
)

// Network is the part of package network a runner needs.
type Network interface {
	Setup(ctx context.Context, podID, netns string, ports []network.PortMapping) (net.IP, error)
	Teardown(ctx context.Context, podID, netns string, ports []network.PortMapping) error
}

// Lookup reads the ConfigMaps and Secrets a pod's environment and volumes
// refer to, and the Services whose addresses it gets, and obtains the
// tokens its volumes hold.
type Lookup interface {
	// ConfigMap and Secret return an error that wraps ErrRefNotFound when
	// the object does not exist.
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// Services returns the Services of a namespace that exist now (none is
	// not an error). The caller does not modify them.
	Services(ctx context.Context, namespace string) ([]*corev1.Service, error)
	// Claim and Volume read a PersistentVolumeClaim and a PersistentVolume,
	// for the pod's claims to be mounted; errors as ConfigMap's.
	Claim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error)
	Volume(ctx context.Context, name string) (*corev1.PersistentVolume, error)
	// ServiceAccount reads a ServiceAccount, whose image pull secrets a
	// pod's pulls use beside its own; errors as ConfigMap's.
	ServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error)
	// ServiceAccountToken obtains a token of the pod's ServiceAccount bound
	// to the pod (it is no longer valid once the pod is gone), for
	// audiences (the API server's own when nil), asking for
	// expirationSeconds (the server may shorten it), and returns it with
	// when it expires. Its errors are the API's, wrapped: none is a
	// sentinel, since the pod cannot go on without the token either way.
	ServiceAccountToken(ctx context.Context, p *corev1.Pod, audiences []string, expirationSeconds int64) (token string, expires time.Time, err error)
}

// ErrRefNotFound means a ConfigMap or Secret a pod refers to does not exist.
var ErrRefNotFound = errors.New("pod: referenced object not found")

// Config is what a Runner needs. Runtime, Network, Lookup, NodeName and
// RootDir are required.
type Config struct {
	Runtime  runtime.Runtime
	Network  Network
	Lookup   Lookup
	NodeName string
	HostIP   string
	// RootDir keeps each pod's files (hosts, resolv.conf, logs, IP) under
	// RootDir/pods/<uid>.
	RootDir string
	// NetNSDir holds the pods' network namespaces; RootDir/netns when empty.
	NetNSDir string
	// ResolvConf is the node's resolver configuration, which pods with
	// dnsPolicy Default get; /etc/resolv.conf when empty.
	ResolvConf string
	// ClusterDNS are the cluster DNS servers' addresses that pods with
	// dnsPolicy ClusterFirst get as nameservers; empty gives them the node's
	// resolv.conf instead.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain; "cluster.local" when empty.
	ClusterDomain string
	// OnProbeChange is called when a probe's result changes, so the caller
	// syncs the pod again at once.
	OnProbeChange func(types.UID)
	// BackoffBase is the first restart back-off, doubling to 5 minutes;
	// 10s, as the kubelet, when zero.
	BackoffBase time.Duration
	// Clock tells the time of the rotation of service account tokens and
	// of WakeAfter; the real one when nil. Tests set a fake one.
	Clock clock.PassiveClock
	// Recorder records the pods' events (Pulling, Started, Unhealthy, ...);
	// none when nil.
	Recorder Recorder
	Logger   *slog.Logger
}

// Runner runs the pods bound to this node. Safe for concurrent use on
// different pods; Sync and Kill of one pod must not run at once (the agent's
// per-pod queue guarantees it).
type Runner struct {
	cfg Config
	log *slog.Logger
	// puller pulls the pods' images in the background, one pull per image.
	puller *puller

	mu   sync.Mutex
	pods map[types.UID]*podRunner // by pod UID
}

// New returns a runner.
func New(cfg Config) (*Runner, error) {
	if cfg.Runtime == nil || cfg.Network == nil || cfg.Lookup == nil || cfg.NodeName == "" || cfg.RootDir == "" {
		return nil, fmt.Errorf("pod runner: runtime, network, lookup, node name and root dir are required")
	}
	if cfg.NetNSDir == "" {
		cfg.NetNSDir = filepath.Join(cfg.RootDir, "netns")
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = servicenet.DefaultClusterDomain
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	r := &Runner{cfg: cfg, log: cfg.Logger.With("component", "pod"), pods: map[types.UID]*podRunner{}}
	r.puller = newPuller(cfg.Runtime, r.wake, cfg.BackoffBase)
	return r, nil
}

// wake asks for the pod to be synced again, as a probe's change does.
func (r *Runner) wake(uid types.UID) {
	if r.cfg.OnProbeChange != nil {
		r.cfg.OnProbeChange(uid)
	}
}

func (r *Runner) podDir(p *corev1.Pod) string {
	return filepath.Join(r.cfg.RootDir, "pods", string(p.UID))
}

// Sync moves the pod one step towards running as its spec says and returns
// the status it has now. It never blocks on a container: call it again when
// something changed or after a short while (the agent requeues).
func (r *Runner) Sync(ctx context.Context, p *corev1.Pod) (corev1.PodStatus, error) {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		// Final, as in Kubernetes: nothing of a finished pod runs again,
		// even when its containers are gone (a Job's pod must not run
		// twice), and its status stays as it ended.
		return p.Status, nil
	}
	cs, err := r.containers(ctx, p)
	if err != nil {
		return p.Status, err
	}
	// The pod's runner before its volumes: it keeps their tokens, whose
	// rotation sets when the pod wakes, as back-offs do.
	pr := r.podRunner(p.UID)
	pr.wakeAt = time.Time{}
	sb, sbErr := r.ensureSandbox(ctx, p)
	if sbErr == nil {
		sb.volumes, sbErr = r.setUpVolumes(ctx, pr, p, sb)
	}
	st := &syncState{pod: p, pr: pr, sandbox: sb, have: cs, waiting: map[string]corev1.ContainerStateWaiting{}}
	if sbErr == nil {
		pr.setUpFailures = 0
		r.runContainers(ctx, st)
		r.probeContainers(ctx, st)
	} else {
		// Tried again soon, then less often: what a volume waits for (a
		// ServiceAccount, a ConfigMap) often comes a moment later.
		pr.waitUntil(r.cfg.Clock.Now().Add(setUpBackoff(pr.setUpFailures)))
		pr.setUpFailures++
		r.log.Warn("pod sandbox", "pod", p.Namespace+"/"+p.Name, "err", sbErr)
		st.sandboxErr = sbErr
		reason := "FailedCreatePodSandBox"
		if sb != nil {
			reason = "FailedMount"
		}
		r.recordf(p, corev1.EventTypeWarning, reason, sbErr.Error())
	}
	return r.status(st), nil
}

// setUpBackoff is how long a pod whose sandbox or volumes failed n times
// before waits to try again: half a second, doubling to 10 seconds.
func setUpBackoff(n int) time.Duration {
	return min(500*time.Millisecond<<min(n, 5), 10*time.Second)
}

// containers returns the runtime's containers of this pod.
func (r *Runner) containers(ctx context.Context, p *corev1.Pod) ([]runtime.Container, error) {
	cs, err := r.cfg.Runtime.ListPod(ctx, string(p.UID))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return cs, nil
}

// Kill stops every container of the pod, giving each the grace period to exit
// after SIGTERM, then removes them and the pod's sandbox.
func (r *Runner) Kill(ctx context.Context, p *corev1.Pod, grace time.Duration) error {
	cs, err := r.containers(ctx, p)
	if err != nil {
		return err
	}
	// The pod's probe workers and pulls end first: nothing of it starts
	// again while it stops.
	r.dropPod(p.UID)
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		if c.State == runtime.StateRunning && p.Name != "" {
			r.recordf(p, corev1.EventTypeNormal, "Killing", "Stopping container "+c.Spec.Name)
		}
		wg.Go(func() {
			left := r.preStop(ctx, p, c, grace)
			if err := r.cfg.Runtime.Stop(ctx, c.ID, left); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				errs[i] = err
				return
			}
			if err := r.cfg.Runtime.Remove(ctx, c.ID); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return r.removeSandbox(ctx, p)
}

// KillOrphans kills the containers of pods not in keep (by uid): pods that
// left the API while the agent was away. It finds them at once and returns
// the killing as a function, so that the caller can start its pod workers
// in between: a pod created after the call is never taken for an orphan,
// and a slow kill never holds the node's new pods up. The returned function
// kills every orphan in parallel. The pods' objects are gone, so their grace
// period is over (or was waived): grace is only what their containers get
// to stop cleanly.
func (r *Runner) KillOrphans(ctx context.Context, keep map[string]bool, grace time.Duration) (func() error, error) {
	all, err := r.cfg.Runtime.List(ctx)
	if err != nil {
		return nil, err
	}
	var orphans []*corev1.Pod
	seen := map[string]bool{}
	for _, c := range all {
		uid := c.Spec.PodUID
		if keep[uid] || seen[uid] {
			continue
		}
		seen[uid] = true
		orphan := &corev1.Pod{}
		orphan.UID, orphan.Namespace, orphan.Name = typesUID(uid), c.Spec.PodNamespace, c.Spec.PodName
		orphans = append(orphans, orphan)
	}
	var sandboxes []*corev1.Pod
	entries, _ := os.ReadDir(filepath.Join(r.cfg.RootDir, "pods"))
	for _, e := range entries {
		if !keep[e.Name()] && !seen[e.Name()] {
			orphan := &corev1.Pod{}
			orphan.UID = typesUID(e.Name())
			sandboxes = append(sandboxes, orphan)
		}
	}
	return func() error {
		errs := make([]error, len(orphans)+len(sandboxes))
		var wg sync.WaitGroup
		for i, o := range orphans {
			wg.Go(func() {
				r.log.Info("killing containers of a pod that is gone", "pod", o.Namespace+"/"+o.Name, "uid", o.UID)
				errs[i] = r.Kill(ctx, o, grace)
			})
		}
		for i, o := range sandboxes {
			wg.Go(func() { errs[len(orphans)+i] = r.removeSandbox(ctx, o) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}, nil
}

// probeContainers runs the probes of the pod's running containers and stops
// those whose liveness or startup probe failed: the restart policy then
// brings them back.
func (r *Runner) probeContainers(ctx context.Context, st *syncState) {
	p := st.pod
	running := map[string]bool{}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		cur, ok := st.latest(c.Name)
		if !ok || cur.State != runtime.StateRunning || !hasProbes(c) {
			continue
		}
		running[cur.ID] = true
		pr := r.ensureProbes(st.pr, p, c, cur, st.sandbox.ip)
		if _, _, failed := pr.get(); failed != "" {
			r.log.Info("container failed its probe, restarting", "pod", p.Namespace+"/"+p.Name, "container", c.Name, "reason", failed)
			r.recordf(p, corev1.EventTypeNormal, "Killing", fmt.Sprintf("Container %s %s, will be restarted", c.Name, strings.ToLower(failed[:1])+failed[1:]))
			if err := r.cfg.Runtime.Stop(ctx, cur.ID, gracePeriod(p)); err != nil {
				r.log.Warn("stop container", "container", c.Name, "err", err)
			}
			delete(running, cur.ID)
			if now, err := r.cfg.Runtime.Inspect(ctx, cur.ID); err == nil {
				st.replace(now)
			}
		}
	}
	st.pr.stopProbes(running)
}

// preStop runs the container's preStop hook within the grace period and
// returns what is left of it for the stop.
func (r *Runner) preStop(ctx context.Context, p *corev1.Pod, c runtime.Container, grace time.Duration) time.Duration {
	spec := containerNamed(p, c.Spec.Name)
	if spec == nil || spec.Name != c.Spec.Name || spec.Lifecycle == nil || spec.Lifecycle.PreStop == nil || c.State != runtime.StateRunning {
		return grace
	}
	start := time.Now()
	ip, _ := os.ReadFile(filepath.Join(r.podDir(p), "ip"))
	t := probeTarget{rt: r.cfg.Runtime, id: c.ID, ip: string(ip), container: spec}
	if err := t.hook(ctx, spec.Lifecycle.PreStop, grace); err != nil {
		r.log.Warn("preStop hook failed", "pod", p.Namespace+"/"+p.Name, "container", c.Spec.Name, "err", err)
	}
	return max(grace-time.Since(start), time.Second)
}

// gracePeriod is the pod's terminationGracePeriodSeconds, 30s when unset.
func gracePeriod(p *corev1.Pod) time.Duration {
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

// ErrNoLogs means the container has no log to show: it never ran, or
// previous was asked of its first run.
var ErrNoLogs = errors.New("pod: no logs")

// LogPath is the log file of a container of the pod: its current attempt, or
// the one before with previous. running says whether the attempt still runs,
// so a follower knows when the log is complete.
func (r *Runner) LogPath(ctx context.Context, p *corev1.Pod, container string, previous bool) (string, bool, error) {
	cs, err := r.containers(ctx, p)
	if err != nil {
		return "", false, err
	}
	st := &syncState{pod: p, have: cs}
	cur, ok := st.latest(container)
	if !ok {
		return "", false, fmt.Errorf("container %q in pod %s/%s has not started: %w", container, p.Namespace, p.Name, ErrNoLogs)
	}
	if previous {
		prev, ok := st.previous(container, cur.Spec.Attempt)
		if !ok {
			return "", false, fmt.Errorf("previous terminated container %q in pod %s/%s not found: %w", container, p.Namespace, p.Name, ErrNoLogs)
		}
		cur = prev
	}
	path := filepath.Join(r.podDir(p), "logs", fmt.Sprintf("%s_%d.log", container, cur.Spec.Attempt))
	return path, cur.State == runtime.StateRunning, nil
}
