package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"golang.org/x/sys/unix"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/internal/version"
)

// nodeLeaseNamespace holds the nodes' heartbeat leases, as in Kubernetes.
const nodeLeaseNamespace = "kube-node-lease"

// registerNode creates this node's Node, or brings an existing one up to date.
// The control plane writes the Node too (its pod CIDR, taints): a conflict
// is answered by reading it again. As the kubelet, it tries again, backing
// off to 7 s, while the API is away or cannot answer (unreachable, timed
// out, overloaded, an internal error of its store); an answer that will not
// change by asking again (a refused token, an invalid Node) ends it.
func (a *Agent) registerNode(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for {
		err := a.registerOnce(ctx)
		if err == nil || !transient(err) {
			return err
		}
		if !apierrors.IsConflict(err) {
			a.log.Warn("registering the node, trying again", "in", backoff, "err", err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 7*time.Second)
	}
}

// transient reports whether asking the API again may succeed.
func transient(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // no answer: the API is unreachable
	}
	return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsUnexpectedServerError(err)
}

func (a *Agent) registerOnce(ctx context.Context) error {
	nodes := a.cfg.Client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName}}
		a.fillNode(node)
		if node, err = nodes.Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("register node %s: %w", a.cfg.NodeName, err)
		}
		a.log.Info("registered node")
	case err != nil:
		return fmt.Errorf("register node %s: %w", a.cfg.NodeName, err)
	default:
		want := node.DeepCopy()
		a.fillNode(want)
		if !equality.Semantic.DeepEqual(want.ObjectMeta, node.ObjectMeta) || !equality.Semantic.DeepEqual(want.Spec, node.Spec) {
			if node, err = nodes.Update(ctx, want, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update node %s: %w", a.cfg.NodeName, err)
			}
		}
	}
	return a.postStatus(ctx, node)
}

// fillNode sets what the agent owns in its Node: labels, pod CIDR.
func (a *Agent) fillNode(n *corev1.Node) {
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels["kubernetes.io/hostname"] = a.cfg.NodeName
	n.Labels["kubernetes.io/os"] = goruntime.GOOS
	n.Labels["kubernetes.io/arch"] = goruntime.GOARCH
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations[keelsonv1alpha1.AnnotationLocalPathCapacity] = resource.NewQuantity(a.cfg.LocalPathCapacity, resource.BinarySI).String()
	if where := a.ingressListens(); where != "" {
		n.Annotations[ingressclass.AnnotationNodeProxy] = where
	} else {
		delete(n.Annotations, ingressclass.AnnotationNodeProxy)
	}
	if n.Spec.PodCIDR == "" && a.cfg.PodCIDR != "" {
		n.Spec.PodCIDR = a.cfg.PodCIDR
		n.Spec.PodCIDRs = []string{a.cfg.PodCIDR}
	}
}

// postStatus writes the node's capacity, addresses, info and conditions.
func (a *Agent) postStatus(ctx context.Context, node *corev1.Node) error {
	n := node.DeepCopy()
	crossed := a.stats.eviction.crossings()
	n.Status = a.nodeStatus(ctx, node.Status, crossed)
	a.mu.Lock()
	a.alloc = n.Status.Allocatable
	a.mu.Unlock()
	if !equality.Semantic.DeepEqual(n.Status, node.Status) {
		if _, err := a.cfg.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("post status of node %s: %w", a.cfg.NodeName, err)
		}
	}
	a.stats.eviction.reported(crossed, n.Status.Conditions)
	return nil
}

// nodeStatus is the node's status now. A pressure condition is True while
// its signal is under the threshold, or when the eviction loop saw it
// under since the last status (crossed), though an eviction relieved it.
func (a *Agent) nodeStatus(ctx context.Context, old corev1.NodeStatus, crossed map[corev1.NodeConditionType]int) corev1.NodeStatus {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(a.cfg.RootDir, &fs); err == nil {
		capacity[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(fs.Blocks)*fs.Bsize, resource.BinarySI)
	}
	// The eviction threshold is kept back from allocatable memory, as the
	// kubelet does.
	allocatable := capacity.DeepCopy()
	mem := allocatable[corev1.ResourceMemory]
	mem.Sub(*resource.NewQuantity(a.cfg.Eviction.MemoryAvailable.Amount(memTotal()), resource.BinarySI))
	if mem.Sign() < 0 {
		mem = resource.MustParse("0")
	}
	allocatable[corev1.ResourceMemory] = mem

	st := corev1.NodeStatus{
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: a.cfg.Port}},
		Capacity:        capacity,
		Allocatable:     allocatable,
		Phase:           corev1.NodeRunning,
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: a.cfg.NodeName}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               readTrim("/etc/machine-id"),
			BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
			KernelVersion:           kernelVersion(),
			OSImage:                 osImage(),
			ContainerRuntimeVersion: a.cfg.RuntimeVersion,
			KubeletVersion:          version.Version,
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
		},
	}
	if a.cfg.HostIP != "" {
		st.Addresses = append([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.cfg.HostIP}}, st.Addresses...)
	}
	// Addresses of other types (ExternalIP, the DNS names) are the cloud
	// provider's, written by the control plane: kept.
	for _, ad := range old.Addresses {
		if ad.Type != corev1.NodeInternalIP && ad.Type != corev1.NodeHostName {
			st.Addresses = append(st.Addresses, ad)
		}
	}
	pressure := map[corev1.NodeConditionType]bool{}
	for _, s := range a.signals() {
		pressure[s.condition] = s.under() || crossed[s.condition] > 0
	}
	conds := []corev1.NodeCondition{
		a.readyCondition(ctx),
		cond(corev1.NodeMemoryPressure, pressure[corev1.NodeMemoryPressure], "KubeletHasInsufficientMemory", "KubeletHasSufficientMemory"),
		cond(corev1.NodeDiskPressure, pressure[corev1.NodeDiskPressure], "KubeletHasDiskPressure", "KubeletHasNoDiskPressure"),
		cond(corev1.NodePIDPressure, pressure[corev1.NodePIDPressure], "KubeletHasInsufficientPID", "KubeletHasSufficientPID"),
	}
	if a.cfg.ServiceProxy {
		conds = append(conds, a.net.condition())
	}
	st.Conditions = nodeConditions(old.Conditions, conds)
	st.Images = a.nodeImages(ctx, old.Images)
	return st
}

func cond(t corev1.NodeConditionType, on bool, yes, no string) corev1.NodeCondition {
	if on {
		return corev1.NodeCondition{Type: t, Status: corev1.ConditionTrue, Reason: yes}
	}
	return corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: no}
}

// nodeConditions keeps each condition's transition time while its status
// holds; the heartbeat time is the lease's business, so it is left alone.
func nodeConditions(old, want []corev1.NodeCondition) []corev1.NodeCondition {
	now := metav1.NewTime(time.Now()).Rfc3339Copy()
	prev := map[corev1.NodeConditionType]corev1.NodeCondition{}
	for _, c := range old {
		prev[c.Type] = c
	}
	for i := range want {
		want[i].LastTransitionTime, want[i].LastHeartbeatTime = now, now
		if p, ok := prev[want[i].Type]; ok && p.Status == want[i].Status {
			want[i].LastTransitionTime, want[i].LastHeartbeatTime = p.LastTransitionTime, p.LastHeartbeatTime
		}
	}
	return want
}

// heartbeat renews the node's lease every quarter of its duration and posts
// the node's status when it changed, until ctx ends.
func (a *Agent) heartbeat(ctx context.Context) {
	every := a.cfg.LeaseDuration / 4
	for {
		if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("renew node lease", "err", err)
		}
		if node, err := a.cfg.Client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{}); err == nil {
			if err := a.postStatus(ctx, node); err != nil && ctx.Err() == nil {
				a.log.Warn("post node status", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		case <-a.net.poke: // the network's health changed: say so now
		case <-a.stats.eviction.poke: // a pressure began: say so now
		}
	}
}

func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.cfg.Client.CoordinationV1().Leases(nodeLeaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: nodeLeaseNamespace, Name: a.cfg.NodeName},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(a.cfg.NodeName),
				LeaseDurationSeconds: ptr.To(int32(a.cfg.LeaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	lease.Spec.HolderIdentity = ptr.To(a.cfg.NodeName)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(a.cfg.LeaseDuration / time.Second))
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func osImage() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return goruntime.GOOS
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return goruntime.GOOS
}

// meminfo returns a /proc/meminfo field in bytes.
func meminfo(field string) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func memTotal() int64     { return meminfo("MemTotal") }
func memAvailable() int64 { return meminfo("MemAvailable") }
