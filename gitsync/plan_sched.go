package gitsync

import (
	"fmt"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	resourcehelper "k8s.io/component-helpers/resource"
	schedhelper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
)

// Scheduling is whether the pods a plan adds fit on the cluster's nodes:
// each node's allocatable less the requests of the pods bound to it, filled
// first fit with the new pods, largest first. Node selectors and taints are
// honoured; affinity, spread constraints and pods freed by the change are
// not, so it is an estimate.
type Scheduling struct {
	// NewPods is how many pods the change adds (creations and scale-ups).
	NewPods int `json:"newPods"`
	// CPU and Memory are what the new pods request, in total.
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
	// FreeCPU and FreeMemory are free on the schedulable nodes, in total.
	FreeCPU    string `json:"freeCpu"`
	FreeMemory string `json:"freeMemory"`
	// Nodes is how many nodes are Ready and schedulable.
	Nodes int `json:"nodes"`
	// Pending is how many new pods would find no node.
	Pending int `json:"pending"`
}

// String is one sentence for people.
func (s *Scheduling) String() string {
	who := fmt.Sprintf("%d new pods request", s.NewPods)
	if s.NewPods == 1 {
		who = "1 new pod requests"
	}
	msg := fmt.Sprintf("%s %s CPU and %s memory; %s CPU and %s memory are free on %d schedulable nodes",
		who, s.CPU, s.Memory, s.FreeCPU, s.FreeMemory, s.Nodes)
	if s.Pending > 0 {
		return msg + fmt.Sprintf("; %s would stay Pending", podCount(int32(s.Pending)))
	}
	return msg + "; all of them fit"
}

// freeNode is a node's room left.
type freeNode struct {
	node     *corev1.Node
	cpu, mem resource.Quantity
	pods     int64
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (st *clusterState) schedulable() []*corev1.Node {
	var out []*corev1.Node
	for _, n := range st.nodes {
		if !n.Spec.Unschedulable && nodeReady(n) {
			out = append(out, n)
		}
	}
	return out
}

// free is the room left on each schedulable node.
func (st *clusterState) free() []*freeNode {
	byName := map[string]*freeNode{}
	var out []*freeNode
	for _, n := range st.schedulable() {
		f := &freeNode{node: n, cpu: n.Status.Allocatable.Cpu().DeepCopy(), mem: n.Status.Allocatable.Memory().DeepCopy(), pods: n.Status.Allocatable.Pods().Value()}
		byName[n.Name] = f
		out = append(out, f)
	}
	for _, p := range st.pods {
		f := byName[p.Spec.NodeName]
		if f == nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		req := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
		f.cpu.Sub(*req.Cpu())
		f.mem.Sub(*req.Memory())
		f.pods--
	}
	return out
}

// newPods are the pods the plan adds: every pod of a created workload, the
// added replicas of a scaled-up one; a created DaemonSet's pods go one to
// each node.
func newPods(p *Plan, old, head map[key]*desired, nodes int) []*corev1.Pod {
	var out []*corev1.Pod
	for _, o := range p.Objects {
		h := head[o.key]
		if h == nil {
			continue
		}
		if pod, ok := h.obj.(*corev1.Pod); ok && o.Action == Create && pod.Spec.NodeName == "" {
			out = append(out, pod)
			continue
		}
		hw, ok := workloadOf(h.obj)
		if !ok {
			continue
		}
		n := hw.replicas
		if _, ds := h.obj.(*appsv1.DaemonSet); ds {
			n = 0
			if o.Action == Create {
				n = int32(nodes)
			}
		}
		if o.Action == Update {
			ow, _ := workloadOf(old[o.key].obj)
			n -= ow.replicas
		}
		for range max(n, 0) {
			out = append(out, &corev1.Pod{ObjectMeta: hw.template.ObjectMeta, Spec: hw.template.Spec})
		}
	}
	return out
}

// fit places the plan's new pods on the nodes; nil when it adds none.
func (st *clusterState) fit(p *Plan, old, head map[key]*desired) *Scheduling {
	nodes := st.free()
	pods := newPods(p, old, head, len(nodes))
	if len(pods) == 0 {
		return nil
	}
	s := &Scheduling{NewPods: len(pods), Nodes: len(nodes)}
	var cpu, mem, freeCPU, freeMem resource.Quantity
	type want struct {
		pod      *corev1.Pod
		cpu, mem resource.Quantity
	}
	wants := make([]want, len(pods))
	for i, pod := range pods {
		req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
		wants[i] = want{pod, req.Cpu().DeepCopy(), req.Memory().DeepCopy()}
		cpu.Add(wants[i].cpu)
		mem.Add(wants[i].mem)
	}
	for _, n := range nodes {
		if n.cpu.Sign() > 0 {
			freeCPU.Add(n.cpu)
		}
		if n.mem.Sign() > 0 {
			freeMem.Add(n.mem)
		}
	}
	slices.SortStableFunc(wants, func(a, b want) int { return b.cpu.Cmp(a.cpu) })
	for _, w := range wants {
		placed := false
		for _, n := range nodes {
			if n.pods > 0 && n.cpu.Cmp(w.cpu) >= 0 && n.mem.Cmp(w.mem) >= 0 && fits(w.pod, n.node) {
				n.cpu.Sub(w.cpu)
				n.mem.Sub(w.mem)
				n.pods--
				placed = true
				break
			}
		}
		if !placed {
			s.Pending++
		}
	}
	s.CPU, s.FreeCPU = cores(cpu), cores(freeCPU)
	s.Memory, s.FreeMemory = mem.String(), freeMem.String()
	return s
}

// fits checks a pod's node selector and the node's hard taints.
func fits(pod *corev1.Pod, n *corev1.Node) bool {
	if !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(n.Labels)) {
		return false
	}
	hard := func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}
	_, untolerated := schedhelper.FindMatchingUntoleratedTaint(klog.Background(), n.Spec.Taints, pod.Spec.Tolerations, hard, false)
	return !untolerated
}

// cores writes a CPU quantity in cores: "1.2", "0.25".
func cores(q resource.Quantity) string {
	return strconv.FormatFloat(float64(q.MilliValue())/1000, 'f', -1, 64)
}
