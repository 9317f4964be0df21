package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/keelson/keelson/agent/pod"
	"github.com/keelson/keelson/agent/runtime"
)

// Config is what an agent needs. Client, Runtime, Network, NodeName, RootDir
// and PodCIDR are required.
type Config struct {
	// Client talks to keelson's API as this node (user system:node:<name>).
	Client kubernetes.Interface
	// Runtime runs the containers.
	Runtime runtime.Runtime
	// RuntimeVersion is reported in the Node's nodeInfo, e.g. "containerd://1.6.20".
	RuntimeVersion string
	// Network wires pods into the node's pod network. Without it, NewNetwork
	// builds one once the Node has a spec.podCIDR.
	Network pod.Network
	// NewNetwork builds the pod network on the node's pod CIDR, as assigned
	// by the control plane (or PodCIDR when set).
	NewNetwork func(podCIDR string) (pod.Network, error)
	// NodeName is this node's name.
	NodeName string
	// HostIP is the node's address, reported as InternalIP and hostIP.
	HostIP string
	// PodCIDR, when set, is written as the Node's spec.podCIDR if it has none;
	// empty leaves the assignment to the control plane (node IPAM).
	PodCIDR string
	// RootDir keeps the pods' files (hosts, logs) and network namespaces.
	RootDir string
	// LocalPathDir keeps the directories of the local-path claims this node
	// provisions; RootDir/storage when empty.
	LocalPathDir string
	// LocalPathCapacity bounds what local-path claims this node takes, in
	// bytes; the size of LocalPathDir's file system when zero.
	LocalPathCapacity int64
	// LeaseDuration is how long the node's lease is valid; renewed every
	// quarter of it. Default 40s (renewal every 10s), as the kubelet.
	LeaseDuration time.Duration
	// Resync is how often a pod is checked when nothing happened: its
	// containers' exits (containerd's events), probe results, pulls and
	// back-offs sync it when they happen. 10s when zero.
	Resync time.Duration
	// Workers sync this many pods at once; default 4.
	Workers int
	// BackoffBase is the first restart back-off of crashed containers,
	// doubling to 5 minutes; 10s when zero.
	BackoffBase time.Duration
	// Eviction are the hard eviction thresholds: below memory.available,
	// nodefs.available or pid.available the node reports MemoryPressure,
	// DiskPressure or PIDPressure and evicts pods. The zero value is
	// DefaultEvictionHard.
	Eviction Eviction
	// ServiceProxy runs the node proxy (nftables rules for services' cluster
	// IPs and node ports) and the routes to other nodes' pods.
	ServiceProxy bool
	// IngressHTTP and IngressHTTPS are where the ingress proxy listens for
	// plain HTTP and HTTPS (":80", ":443"); it does not run when both are
	// empty.
	IngressHTTP, IngressHTTPS string
	// ProxyTable is the node proxy's nftables table; "keelson" when empty.
	ProxyTable string
	// NetNS is the network namespace (a path) whose rules and routes the
	// node proxy and the pod routes program; the agent's own when empty.
	NetNS string
	// Masquerade rewrites the source of pod traffic leaving the pod network
	// (the node proxy does it).
	Masquerade bool
	// ClusterDNS are the cluster DNS servers pods with dnsPolicy ClusterFirst
	// use (10.43.0.10); empty gives them the node's resolv.conf.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain; "cluster.local" when empty.
	ClusterDomain string
	// StatsInterval is how often containers' and the node's usage is
	// sampled for /stats/summary; 10s when zero.
	StatsInterval time.Duration
	// Port is where the agent's endpoint (Handler) listens, reported in the
	// Node's daemonEndpoints for the API server to reach; 0 when not served.
	Port   int32
	Logger *slog.Logger
}

// Agent runs the pods the scheduler binds to this node.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	runner *pod.Runner
	queue  workqueue.TypedRateLimitingInterface[string]
	pods   cache.Indexer
	// objects are the ConfigMaps, Secrets, claims and volumes the pods
	// read, kept by watches.
	objects *objectCache

	mu    sync.Mutex
	known map[string]*corev1.Pod // key → last pod seen, to clean up after it is gone
	alloc corev1.ResourceList    // the node's allocatable, as last posted
	stats *sampler
	// evicting holds the pods chosen for eviction until their sync evicts them.
	evicting map[types.UID]bool
	evicted  map[types.UID]bool
	// lazy is the pod network while it waits for the node's pod CIDR.
	lazy *lazyNetwork
	// cluster informs of objects of every namespace the node needs
	// (Services for pods' environments; claims, volumes and storage classes
	// for local-path storage).
	cluster informers.SharedInformerFactory
	// net is the health of the node proxy and the pod routes.
	net *netHealth
	// localPath provisions this node's local-path claims.
	localPath *localPath
	// rec records the pods' events while Run runs.
	rec record.EventRecorder
}

// Event records an event through the recorder Run starts; before and after
// Run, it is dropped.
func (a *Agent) Event(obj k8sruntime.Object, eventType, reason, message string) {
	a.mu.Lock()
	rec := a.rec
	a.mu.Unlock()
	if rec != nil {
		rec.Event(obj, eventType, reason, message)
	}
}

func (a *Agent) allocatable() corev1.ResourceList {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.alloc
}

// New checks the configuration.
func New(cfg Config) (*Agent, error) {
	if cfg.Client == nil || cfg.Runtime == nil || (cfg.Network == nil && cfg.NewNetwork == nil) || cfg.NodeName == "" || cfg.RootDir == "" {
		return nil, errors.New("agent: client, runtime, network, node name and root dir are required")
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = 40 * time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 10 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 10 * time.Second
	}
	if cfg.Eviction == (Eviction{}) {
		cfg.Eviction, _ = ParseEviction("") // the defaults parse
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("component", "agent", "node", cfg.NodeName), known: map[string]*corev1.Pod{}, stats: newSampler(), evicting: map[types.UID]bool{}, evicted: map[types.UID]bool{}, net: newNetHealth()}
	net := cfg.Network
	if net == nil {
		a.lazy = &lazyNetwork{}
		net = a.lazy
	}
	a.cluster = informers.NewSharedInformerFactory(cfg.Client, 0)
	services := a.cluster.Core().V1().Services()
	a.objects = newObjectCache(cfg.Client, defaultObjectIdle, a.objectChanged)
	lookup := apiLookup{client: cfg.Client, objects: a.objects, services: services.Lister(), synced: services.Informer().HasSynced, syncWait: servicesSyncWait}
	runner, err := pod.New(pod.Config{
		Runtime: cfg.Runtime, Network: net, Lookup: lookup,
		NodeName: cfg.NodeName, HostIP: cfg.HostIP, RootDir: cfg.RootDir, Logger: cfg.Logger,
		OnProbeChange: a.probeChanged, BackoffBase: cfg.BackoffBase, Recorder: a,
		ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
	})
	if err != nil {
		return nil, err
	}
	a.runner = runner
	if cfg.LocalPathDir == "" {
		a.cfg.LocalPathDir = filepath.Join(cfg.RootDir, "storage")
	}
	if err := os.MkdirAll(a.cfg.LocalPathDir, 0o755); err != nil {
		return nil, fmt.Errorf("agent: local-path directory: %w", err)
	}
	if a.cfg.LocalPathCapacity <= 0 {
		var fs unix.Statfs_t
		if err := unix.Statfs(a.cfg.LocalPathDir, &fs); err != nil {
			return nil, fmt.Errorf("agent: local-path directory %s: %w", a.cfg.LocalPathDir, err)
		}
		a.cfg.LocalPathCapacity = int64(fs.Blocks) * fs.Bsize
	}
	a.localPath = newLocalPath(cfg.Client, a.cluster, cfg.NodeName, a.cfg.LocalPathDir,
		*resource.NewQuantity(a.cfg.LocalPathCapacity, resource.BinarySI), a.log)
	return a, nil
}

// Run registers the node, keeps its lease and status fresh, and runs the pods
// bound to it until ctx ends. Pods keep running when the agent stops.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.registerNode(ctx); err != nil {
		return err
	}
	// What Run starts ends with ctx, which Run cancels however it returns:
	// an error (a pod network that cannot be built) must end Run, not wait
	// for ever on the node proxy, the informers and the heartbeat.
	defer a.runner.Close() // once the workers are done
	var wg sync.WaitGroup
	defer wg.Wait()
	defer a.cluster.Shutdown()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rec, stopRec := newRecorder(ctx, a.cfg.Client, a.cfg.NodeName)
	defer stopRec()
	a.mu.Lock()
	a.rec = rec
	a.mu.Unlock()
	wg.Go(func() { a.heartbeat(ctx) }) // the lease is renewed while the node waits for its pod CIDR
	if err := a.startNetwork(ctx, &wg); err != nil {
		return err
	}
	if err := a.startIngress(ctx, &wg); err != nil {
		return err
	}
	a.cluster.Start(ctx.Done())
	if a.lazy != nil {
		if err := a.awaitPodCIDR(ctx); err != nil {
			return err
		}
	}
	wg.Go(func() { a.objects.run(ctx) })
	wg.Go(func() { a.sampleLoop(ctx, a.cfg.StatsInterval) })
	wg.Go(func() { a.localPath.run(ctx) })

	factory := informers.NewSharedInformerFactoryWithOptions(a.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName=" + a.cfg.NodeName }))
	inf := factory.Core().V1().Pods().Informer()
	a.pods = inf.GetIndexer()
	a.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "pods"})
	defer a.queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.queue.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("agent: pod cache did not sync: %w", ctx.Err())
	}
	killOrphans := a.findOrphans(ctx)
	wg.Go(func() { a.evictionLoop(ctx, a.cfg.StatsInterval) }) // it reads a.pods and a.queue
	wg.Go(func() { a.followExits(ctx) })
	for range a.cfg.Workers {
		wg.Go(func() {
			for a.work(ctx) {
			}
		})
	}
	wg.Go(killOrphans)
	<-ctx.Done()
	a.queue.ShutDown()
	return nil
}

// findOrphans finds what the runtime runs for pods the API no longer binds
// to this node (deleted while the agent was away) and returns the function
// that stops it, to run beside the pod workers.
func (a *Agent) findOrphans(ctx context.Context) func() {
	keep := map[string]bool{}
	for _, obj := range a.pods.List() {
		keep[string(obj.(*corev1.Pod).UID)] = true
	}
	kill, err := a.runner.KillOrphans(ctx, keep, orphanGrace)
	if err != nil {
		a.log.Warn("cleaning up pods that are gone", "err", err)
		return func() {}
	}
	return func() {
		if err := kill(); err != nil && ctx.Err() == nil {
			a.log.Warn("cleaning up pods that are gone", "err", err)
		}
	}
}

// orphanGrace is how long the containers of a pod that left the API get to
// stop: the pod's own grace period was spent (or waived) when it was deleted.
const orphanGrace = 2 * time.Second

func (a *Agent) work(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	requeue, err := a.syncPod(ctx, key)
	switch {
	case err != nil:
		a.log.Warn("sync pod", "pod", key, "err", err)
		a.queue.AddRateLimited(key)
	case requeue > 0:
		a.queue.Forget(key)
		a.queue.AddAfter(key, requeue)
	default:
		a.queue.Forget(key)
	}
	return true
}

// probeChanged syncs a pod again as soon as one of its probes flips, so its
// readiness reaches the API without waiting for the next resync.
// objectChanged syncs the pods that read the object of ref, which its
// watch saw change.
func (a *Agent) objectChanged(ref objectRef) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, p := range a.known {
		if a.queue != nil && readsObject(p, ref) {
			a.queue.Add(key)
		}
	}
}

func (a *Agent) probeChanged(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, p := range a.known {
		if p.UID == uid && a.queue != nil {
			a.queue.Add(key)
		}
	}
}
