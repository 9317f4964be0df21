package agent

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	schedhelper "k8s.io/component-helpers/scheduling/corev1"

	"github.com/keelson/keelson/agent/pod"
)

// usageOf is what one pod uses of the resource a signal measures: in all,
// and by container where it is measured per container.
type usageOf struct {
	total       int64
	byContainer map[string]int64
}

// podUsage is the pods' use of one resource, by pod UID. A pod missing
// from it uses none that was seen.
type podUsage map[types.UID]usageOf

// The ranking functions order the candidates for eviction under one
// signal, the first to go first, and leave out the pods that signal never
// evicts. They do not change pods.

// rankMemory ranks for memory pressure: BestEffort pods first, then
// Burstable pods using more than they requested, each group by how much
// they use beyond their requests, largest first. Guaranteed pods and pods
// within their requests stay.
func rankMemory(pods []*corev1.Pod, use podUsage) []*corev1.Pod {
	type candidate struct {
		p    *corev1.Pod
		rank int
		over int64
	}
	var cs []candidate
	for _, p := range pods {
		used := use[p.UID].total
		switch pod.QOSClass(p) {
		case corev1.PodQOSBestEffort:
			cs = append(cs, candidate{p, 0, used})
		case corev1.PodQOSBurstable:
			req := podRequests(p)[corev1.ResourceMemory]
			if over := used - req.Value(); over > 0 {
				cs = append(cs, candidate{p, 1, over})
			}
		}
	}
	slices.SortStableFunc(cs, func(x, y candidate) int {
		return cmp.Or(cmp.Compare(x.rank, y.rank), cmp.Compare(y.over, x.over), byName(x.p, y.p))
	})
	out := make([]*corev1.Pod, len(cs))
	for i, c := range cs {
		out[i] = c.p
	}
	return out
}

// rankPIDs ranks for PID pressure as the kubelet does: by priority, lowest
// first, then by processes (and threads), most first. Every pod is a
// candidate, Guaranteed ones too: process IDs are no resource a pod
// requests, so its QoS class says nothing of its share, and a Guaranteed
// pod that forks without end would otherwise take the whole node down.
func rankPIDs(pods []*corev1.Pod, use podUsage) []*corev1.Pod {
	out := slices.Clone(pods)
	slices.SortStableFunc(out, func(x, y *corev1.Pod) int {
		return cmp.Or(
			cmp.Compare(schedhelper.PodPriority(x), schedhelper.PodPriority(y)),
			cmp.Compare(use[y.UID].total, use[x.UID].total),
			byName(x, y))
	})
	return out
}

// rankDisk ranks for disk pressure (nodefs) as the kubelet does: pods using
// more ephemeral storage than they requested first, then by priority,
// lowest first, then by use beyond the request, largest first. QoS classes
// come from CPU and memory and do not enter: a pod keeps its place by
// requesting the ephemeral storage it uses.
func rankDisk(pods []*corev1.Pod, use podUsage) []*corev1.Pod {
	over := func(p *corev1.Pod) int64 {
		req := podRequests(p)[corev1.ResourceEphemeralStorage]
		return use[p.UID].total - req.Value()
	}
	exceeds := func(p *corev1.Pod) int {
		if over(p) > 0 {
			return 0
		}
		return 1
	}
	out := slices.Clone(pods)
	slices.SortStableFunc(out, func(x, y *corev1.Pod) int {
		return cmp.Or(
			cmp.Compare(exceeds(x), exceeds(y)),
			cmp.Compare(schedhelper.PodPriority(x), schedhelper.PodPriority(y)),
			cmp.Compare(over(y), over(x)),
			byName(x, y))
	})
	return out
}

// byName breaks ties, so a ranking does not depend on the informer's order.
func byName(x, y *corev1.Pod) int {
	return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
}
