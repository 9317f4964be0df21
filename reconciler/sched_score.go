package reconciler

import (
	corev1 "k8s.io/api/core/v1"
)

// maxScore is the top score of every scoring function, as in kube-scheduler.
const maxScore = 100

// zoneLabel is the node label the spreading score groups zones by.
const zoneLabel = corev1.LabelTopologyZone

// Score weights, kube-scheduler's defaults.
const (
	weightResources   = 1
	weightBalanced    = 1
	weightNodeAff     = 2
	weightTaints      = 3
	weightSpread      = 2
	weightImage       = 1
	weightPodAff      = 2
	imageMinThreshold = 23 << 20
	imageMaxThreshold = 1000 << 20
)

// leastAllocatedScore favours the node with the most CPU and memory left
// after the pod, on average.
func leastAllocatedScore(c *candidate, n *nodeInfo) int64 {
	cpu := leastAllocated(n.nonzero.milliCPU+c.info.nonzero.milliCPU, n.allocatable.milliCPU)
	mem := leastAllocated(n.nonzero.memory+c.info.nonzero.memory, n.allocatable.memory)
	return (cpu + mem) / 2
}

func leastAllocated(requested, capacity int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * maxScore / capacity
}

// balancedScore favours nodes whose CPU and memory would be used in equal
// shares after the pod.
func balancedScore(c *candidate, n *nodeInfo) int64 {
	cpu := fraction(n.nonzero.milliCPU+c.info.nonzero.milliCPU, n.allocatable.milliCPU)
	mem := fraction(n.nonzero.memory+c.info.nonzero.memory, n.allocatable.memory)
	d := cpu - mem
	if d < 0 {
		d = -d
	}
	// The standard deviation of two shares is half their difference.
	return int64((1 - d/2) * maxScore)
}

func fraction(requested, capacity int64) float64 {
	if capacity <= 0 {
		return 1
	}
	f := float64(requested) / float64(capacity)
	if f > 1 {
		return 1
	}
	return f
}

// imageScore favours nodes that already hold the pod's images, by size,
// between kube-scheduler's thresholds (23 MB, 1000 MB per container).
func imageScore(c *candidate, n *nodeInfo) int64 {
	if len(n.images) == 0 {
		return 0
	}
	var sum int64
	for _, img := range c.images {
		sum += n.images[img]
	}
	hi := int64(imageMaxThreshold) * int64(len(c.images))
	switch {
	case sum < imageMinThreshold:
		return 0
	case sum > hi:
		sum = hi
	}
	return maxScore * (sum - imageMinThreshold) / (hi - imageMinThreshold)
}

// preferredAffinityRaw is the sum of the weights of the preferred node
// affinity terms the node matches; normalized over the feasible nodes.
func preferredAffinityRaw(c *candidate, n *nodeInfo) int64 {
	if c.preferred == nil {
		return 0
	}
	return c.preferred.Score(n.node)
}

// preferNoScheduleRaw counts the node's PreferNoSchedule taints the pod does
// not tolerate; fewer is better.
func preferNoScheduleRaw(c *candidate, n *nodeInfo) int64 {
	var count int64
	for i := range n.taints {
		t := &n.taints[i]
		if t.Effect != corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := false
		for j := range c.pod.Spec.Tolerations {
			tol := &c.pod.Spec.Tolerations[j]
			if (tol.Effect == "" || tol.Effect == corev1.TaintEffectPreferNoSchedule) && tol.ToleratesTaint(klogBackground, t, false) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			count++
		}
	}
	return count
}

// ownerCountRaw counts the pods of the candidate's controller on the node;
// fewer is better.
func ownerCountRaw(c *candidate, n *nodeInfo) int64 {
	if c.info.owner == "" {
		return 0
	}
	return int64(c.owned[n])
}

// scored is a feasible node and its running total.
type scored struct {
	n     *nodeInfo
	score int64
}

// scoreNodes adds every score to each feasible node.
func scoreNodes(c *candidate, nodes []scored) {
	raw := make([]int64, len(nodes))
	for i := range nodes {
		n := nodes[i].n
		nodes[i].score = weightResources*leastAllocatedScore(c, n) + weightBalanced*balancedScore(c, n) + weightImage*imageScore(c, n)
	}
	normalize(c, nodes, raw, preferredAffinityRaw, weightNodeAff, false)
	normalize(c, nodes, raw, preferNoScheduleRaw, weightTaints, true)
	if c.podAffinity != nil && len(c.podAffinity.preferred) > 0 {
		normalizeMinMax(c, nodes, raw, preferredPodAffinityRaw, weightPodAff)
	}
	if hasSoftSpread(c) {
		normalize(c, nodes, raw, softSpreadRaw, weightSpread, true)
	} else if c.info.owner != "" {
		// kube-scheduler's default constraints: spread a controller's pods.
		spreadScores(c, nodes, raw)
	}
}

// normalize scales a raw score to 0..maxScore over the feasible nodes
// (reversed: the lowest raw value scores highest) and adds it with weight.
func normalize(c *candidate, nodes []scored, raw []int64, f func(*candidate, *nodeInfo) int64, weight int64, reverse bool) {
	var hi int64
	for i := range nodes {
		raw[i] = f(c, nodes[i].n)
		hi = max(hi, raw[i])
	}
	for i := range nodes {
		s := int64(maxScore)
		if hi > 0 {
			s = raw[i] * maxScore / hi
			if reverse {
				s = maxScore - s
			}
		} else if !reverse {
			s = 0
		}
		nodes[i].score += weight * s
	}
}

// normalizeMinMax scales a raw score that may be negative to 0..maxScore
// between its lowest and highest value over the feasible nodes.
func normalizeMinMax(c *candidate, nodes []scored, raw []int64, f func(*candidate, *nodeInfo) int64, weight int64) {
	lo, hi := int64(0), int64(0)
	for i := range nodes {
		raw[i] = f(c, nodes[i].n)
		if i == 0 || raw[i] < lo {
			lo = raw[i]
		}
		if i == 0 || raw[i] > hi {
			hi = raw[i]
		}
	}
	if hi == lo {
		return
	}
	for i := range nodes {
		nodes[i].score += weight * (raw[i] - lo) * maxScore / (hi - lo)
	}
}

// spreadScores favours nodes, and zones, holding fewer pods of the same
// controller; zones weigh two thirds when the nodes have zones, as in
// kube-scheduler's selector spreading.
func spreadScores(c *candidate, nodes []scored, raw []int64) {
	var hiNode, hiZone int64
	zones := map[string]int64{}
	for i := range nodes {
		raw[i] = ownerCountRaw(c, nodes[i].n)
		hiNode = max(hiNode, raw[i])
		if z := nodes[i].n.zone; z != "" {
			zones[z] += raw[i]
		}
	}
	for _, v := range zones {
		hiZone = max(hiZone, v)
	}
	for i := range nodes {
		s := float64(maxScore)
		if hiNode > 0 {
			s = float64(maxScore) * float64(hiNode-raw[i]) / float64(hiNode)
		}
		if z := nodes[i].n.zone; z != "" && len(zones) > 0 {
			zs := float64(maxScore)
			if hiZone > 0 {
				zs = float64(maxScore) * float64(hiZone-zones[z]) / float64(hiZone)
			}
			s = s/3 + zs*2/3
		}
		nodes[i].score += weightSpread * int64(s)
	}
}
