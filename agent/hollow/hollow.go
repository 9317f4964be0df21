package hollow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/version"
)

// Node is one simulated node: its name and the client that speaks for it
// (with its own token: the API lets a node write only its own objects).
type Node struct {
	Name   string
	Client kubernetes.Interface
}

// Options tune the simulated nodes.
type Options struct {
	// Nodes are the nodes to simulate. Required.
	Nodes []Node
	// Capacity of each node. Default 32 CPUs, 256Gi of memory, 110 pods.
	Capacity corev1.ResourceList
	// LeaseDuration is the nodes' lease duration; they renew every quarter
	// of it, as the kubelet does. Default 40s.
	LeaseDuration time.Duration
	// Workers write pod statuses in parallel, and renew leases (at least one
	// worker per 50 nodes for those). Default 64.
	Workers int
	// Log gets what goes wrong. Default: discarded.
	Log *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Capacity == nil {
		o.Capacity = corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
			corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
		}
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 40 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Run registers the nodes, then keeps their leases and runs their pods in
// the background until ctx ends. It returns once the nodes are registered
// and the pods listed; done is closed when the background work has
// stopped.
func Run(ctx context.Context, opts Options) (done <-chan struct{}, err error) {
	opts = opts.withDefaults()
	if len(opts.Nodes) == 0 {
		return nil, errors.New("hollow: no nodes to simulate")
	}
	h := &hollow{opts: opts, byName: make(map[string]int, len(opts.Nodes)),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())}
	for i, n := range opts.Nodes {
		if _, dup := h.byName[n.Name]; dup {
			return nil, fmt.Errorf("hollow: node %s given twice", n.Name)
		}
		h.byName[n.Name] = i
	}
	if err := h.register(ctx); err != nil {
		return nil, err
	}
	// One informer over every pod: nodes may read all of them, and one
	// watch serves thousands of nodes where a watch each would not.
	factory := informers.NewSharedInformerFactory(opts.Nodes[0].Client, 0)
	h.pods = factory.Core().V1().Pods().Informer()
	if _, err := h.pods.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: h.ours,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    h.enqueue,
			UpdateFunc: func(_, obj any) { h.enqueue(obj) },
		},
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), h.pods.HasSynced) {
		return nil, ctx.Err()
	}
	out := make(chan struct{})
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Go(func() {
			for h.next(ctx) {
			}
		})
	}
	wg.Go(func() { h.renewLeases(ctx) })
	go func() {
		<-ctx.Done()
		h.queue.ShutDown()
		wg.Wait()
		factory.Shutdown()
		close(out)
	}()
	return out, nil
}

type hollow struct {
	opts   Options
	byName map[string]int
	pods   cache.SharedIndexInformer
	queue  workqueue.TypedRateLimitingInterface[string]
}

func (h *hollow) client(node string) kubernetes.Interface {
	return h.opts.Nodes[h.byName[node]].Client
}

// ours keeps the pods bound to a simulated node.
func (h *hollow) ours(obj any) bool {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return false
	}
	_, ok = h.byName[p.Spec.NodeName]
	return ok
}

func (h *hollow) enqueue(obj any) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		h.queue.Add(key)
	}
}

// addressOf gives node i an address of its own, in 100.64.0.0/10 (shared
// address space: no real host has it).
func addressOf(i int) string {
	return net.IPv4(100, byte(64+i>>16&0x3f), byte(i>>8), byte(i)).String()
}

// register creates each node's Node, Ready, in parallel.
func (h *hollow) register(ctx context.Context) error {
	work := make(chan int)
	errs := make(chan error, len(h.opts.Nodes))
	var wg sync.WaitGroup
	for range h.opts.Workers {
		wg.Go(func() {
			for i := range work {
				if err := h.registerOne(ctx, i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range h.opts.Nodes {
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func (h *hollow) registerOne(ctx context.Context, i int) error {
	n := h.opts.Nodes[i]
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			corev1.LabelHostname: n.Name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
			"keelson.dev/hollow": "true",
		}},
		Status: corev1.NodeStatus{
			Capacity: h.opts.Capacity, Allocatable: h.opts.Capacity,
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addressOf(i)}, {Type: corev1.NodeHostName, Address: n.Name}},
			Conditions: []corev1.NodeCondition{
				cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "simulated node: no containers run here"),
				cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "simulated"),
				cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "simulated"),
				cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "simulated"),
				cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated", "simulated"),
			},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: version.Version + "-hollow", OperatingSystem: "linux", Architecture: "amd64",
				ContainerRuntimeVersion: "simulated://1"},
		},
	}
	_, err := n.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := n.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("hollow node %s: %w", n.Name, gerr)
		}
		cur.Status.Conditions, cur.Status.Capacity, cur.Status.Allocatable = node.Status.Conditions, node.Status.Capacity, node.Status.Allocatable
		_, err = n.Client.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("hollow node %s: %w", n.Name, err)
	}
	return nil
}

// renewLeases renews every node's lease once per quarter of the lease
// duration, spread evenly over that time, as thousands of kubelets started
// at different moments do. Renewals run on Workers goroutines: one at a
// time, a slow API would stretch the round past the grace period and the
// nodes would go NotReady.
func (h *hollow) renewLeases(ctx context.Context) {
	every := h.opts.LeaseDuration / 4
	var mu sync.Mutex // guards leases
	leases := make([]*coordinationv1.Lease, len(h.opts.Nodes))
	due := make(chan int)
	var wg sync.WaitGroup
	// A kubelet each renew on their own: enough workers that a round of
	// renewals fits in its time with the API taking ~100 ms an update.
	for range max(h.opts.Workers, len(h.opts.Nodes)/50) {
		wg.Go(func() {
			for i := range due {
				mu.Lock()
				l := leases[i]
				mu.Unlock()
				l, err := h.renew(ctx, i, l)
				if err != nil && ctx.Err() == nil {
					h.opts.Log.Warn("hollow node lease", "node", h.opts.Nodes[i].Name, "err", err)
					l = nil // read it afresh next time
				}
				mu.Lock()
				leases[i] = l
				mu.Unlock()
			}
		})
	}
	defer wg.Wait()
	defer close(due)
	step := every / time.Duration(len(h.opts.Nodes))
	tick := time.NewTicker(max(step, time.Millisecond))
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(h.opts.Nodes) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case due <- i:
		case <-ctx.Done():
			return
		}
	}
}

func (h *hollow) renew(ctx context.Context, i int, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	n := h.opts.Nodes[i]
	leases := n.Client.CoordinationV1().Leases("kube-node-lease")
	now := metav1.NewMicroTime(time.Now())
	if l == nil {
		cur, err := leases.Get(ctx, n.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: n.Name, Namespace: "kube-node-lease"},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.Name), RenewTime: &now,
					LeaseDurationSeconds: ptr.To(int32(h.opts.LeaseDuration / time.Second))},
			}, metav1.CreateOptions{})
		}
		if err != nil {
			return nil, err
		}
		l = cur
	}
	l = l.DeepCopy()
	l.Spec.RenewTime = &now
	return leases.Update(ctx, l, metav1.UpdateOptions{})
}

func (h *hollow) next(ctx context.Context) bool {
	key, quit := h.queue.Get()
	if quit {
		return false
	}
	defer h.queue.Done(key)
	if err := h.sync(ctx, key); err != nil && ctx.Err() == nil {
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			h.opts.Log.Warn("hollow pod", "pod", key, "err", err)
		}
		h.queue.AddRateLimited(key)
		return true
	}
	h.queue.Forget(key)
	return true
}

// sync runs one pod as a kubelet would, without containers: a pending pod
// becomes Running and Ready at once; a deleted one is gone at once.
func (h *hollow) sync(ctx context.Context, key string) error {
	obj, exists, err := h.pods.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return err
	}
	p := obj.(*corev1.Pod)
	client := h.client(p.Spec.NodeName)
	if p.DeletionTimestamp != nil {
		err := client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)), Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, or a new pod of that name
		}
		return err
	}
	if p.Status.Phase != corev1.PodPending && p.Status.Phase != "" {
		return nil
	}
	p = p.DeepCopy()
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP = addressOf(h.byName[p.Spec.NodeName])
	p.Status.HostIPs = []corev1.HostIP{{IP: p.Status.HostIP}}
	p.Status.PodIP = p.Status.HostIP
	p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
	p.Status.StartTime = &now
	// The scheduler's PodScheduled stays as it wrote it (when the pod was
	// bound); the kubelet's conditions are true from now.
	conds := p.Status.Conditions[:0:0]
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			conds = append(conds, c)
		}
	}
	for _, t := range []corev1.PodConditionType{corev1.PodInitialized, corev1.PodReadyToStartContainers, corev1.ContainersReady, corev1.PodReady} {
		conds = append(conds, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	p.Status.Conditions = conds
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "simulated://" + c.Image, ContainerID: "simulated://" + string(p.UID) + "/" + c.Name,
			Ready: true, Started: ptr.To(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	_, err = client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}
