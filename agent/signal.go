package agent

import (
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

// resourcePIDs is what PID pressure is short of, named as the kubelet names
// it in its eviction messages (it is no resource a pod can request).
const resourcePIDs corev1.ResourceName = "pids"

// signal is one eviction signal as the node shows it now.
type signal struct {
	// resource is what the node is low on when the signal crosses its
	// threshold: memory, ephemeral-storage or pids.
	resource  corev1.ResourceName
	condition corev1.NodeConditionType
	threshold Threshold
	// avail and capacity are in the signal's units (bytes, process IDs);
	// observed is false when they could not be read.
	avail, capacity int64
	observed        bool
}

// under reports whether the signal crossed its threshold.
func (s signal) under() bool {
	return s.observed && s.threshold.Below(s.avail, s.capacity)
}

// signals observes the node's eviction signals, in the order the eviction
// loop handles them: memory first, as the kubelet does, then the data
// dir's file system (nodefs), then process IDs.
func (a *Agent) signals() []signal {
	ev := a.cfg.Eviction
	mem := signal{resource: corev1.ResourceMemory, condition: corev1.NodeMemoryPressure, threshold: ev.MemoryAvailable,
		avail: memAvailable(), capacity: memTotal()}
	mem.observed = mem.capacity > 0
	disk := signal{resource: corev1.ResourceEphemeralStorage, condition: corev1.NodeDiskPressure, threshold: ev.NodeFSAvailable}
	var fs unix.Statfs_t
	if err := unix.Statfs(a.cfg.RootDir, &fs); err == nil && fs.Blocks > 0 {
		disk.avail, disk.capacity, disk.observed = int64(fs.Bavail)*fs.Bsize, int64(fs.Blocks)*fs.Bsize, true
	}
	pids := signal{resource: resourcePIDs, condition: corev1.NodePIDPressure, threshold: ev.PIDAvailable}
	if avail, limit, err := pidsAvailable(); err == nil {
		pids.avail, pids.capacity, pids.observed = avail, limit, true
	}
	return []signal{mem, disk, pids}
}

// observe is one signal as the node shows it now.
func (a *Agent) observe(r corev1.ResourceName) signal {
	for _, s := range a.signals() {
		if s.resource == r {
			return s
		}
	}
	return signal{resource: r}
}

// quantity formats an amount in the signal's units.
func (s signal) quantity(n int64) *resource.Quantity {
	if s.resource == resourcePIDs {
		return resource.NewQuantity(n, resource.DecimalSI)
	}
	return resource.NewQuantity(n, resource.BinarySI)
}

// message is the kubelet's words for an eviction on this signal: what the
// node was low on, the threshold and what was left, then each container
// of the victim that used more than it requested (for memory and
// ephemeral storage, which containers request).
func (s signal) message(p *corev1.Pod, use usageOf) string {
	parts := []string{fmt.Sprintf("The node was low on resource: %s. Threshold quantity: %s, available: %s.",
		s.resource, s.quantity(s.threshold.Amount(s.capacity)), s.quantity(s.avail))}
	if s.resource != resourcePIDs {
		for _, c := range p.Spec.Containers {
			used, ok := use.byContainer[c.Name]
			req := c.Resources.Requests[s.resource]
			if ok && used > req.Value() {
				parts = append(parts, fmt.Sprintf("Container %s was using %s, request is %s, has larger consumption of %s.",
					c.Name, s.quantity(used), req.String(), s.resource))
			}
		}
	}
	return strings.Join(parts, " ")
}

// evictionState is what the eviction loop tells the node's status and the
// pod workers.
type evictionState struct {
	mu sync.Mutex
	// crossed counts, by condition, the rounds that saw its signal cross
	// the threshold since a node status last reported it: a pressure that
	// one eviction relieves between two heartbeats is still reported once.
	crossed map[corev1.NodeConditionType]int
	// posted are the pressure conditions the last status posted as True.
	posted map[corev1.NodeConditionType]bool
	// reasons are the eviction messages of the pods chosen for eviction.
	reasons map[types.UID]string
	// poke asks the heartbeat to post the node's status now.
	poke chan struct{}
}

func newEvictionState() *evictionState {
	return &evictionState{crossed: map[corev1.NodeConditionType]int{}, posted: map[corev1.NodeConditionType]bool{},
		reasons: map[types.UID]string{}, poke: make(chan struct{}, 1)}
}

// cross records that the signal of the condition crossed its threshold,
// and has the status posted at once when it does not say so yet.
func (e *evictionState) cross(c corev1.NodeConditionType) {
	e.mu.Lock()
	e.crossed[c]++
	tell := !e.posted[c]
	e.mu.Unlock()
	if tell {
		select {
		case e.poke <- struct{}{}:
		default:
		}
	}
}

// crossings is a copy of the crossings not yet reported.
func (e *evictionState) crossings() map[corev1.NodeConditionType]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[corev1.NodeConditionType]int, len(e.crossed))
	for c, n := range e.crossed {
		out[c] = n
	}
	return out
}

// reported records a posted status: the pressure conditions it said True,
// and the crossings it included, which are forgotten; one seen since is
// kept for the next status.
func (e *evictionState) reported(seen map[corev1.NodeConditionType]int, conds []corev1.NodeCondition) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for c, n := range seen {
		if e.crossed[c] == n {
			delete(e.crossed, c)
		}
	}
	for _, c := range conds {
		e.posted[c.Type] = c.Status == corev1.ConditionTrue
	}
}

func (e *evictionState) setReason(uid types.UID, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reasons[uid] = msg
}

func (e *evictionState) reason(uid types.UID) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	msg, ok := e.reasons[uid]
	return msg, ok
}

// forgetReasons drops the messages of pods no longer being evicted.
func (e *evictionState) forgetReasons(keep func(types.UID) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for uid := range e.reasons {
		if !keep(uid) {
			delete(e.reasons, uid)
		}
	}
}
