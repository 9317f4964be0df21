package reconciler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Reasons of the topology spread filter, in kube-scheduler's words.
const (
	reasonSpread        = "node(s) didn't match pod topology spread constraints"
	reasonSpreadMissing = "node(s) didn't match pod topology spread constraints (missing required label)"
)

// spreadConstraint is one topology spread constraint with, once computed
// against the snapshot, the matching pods per domain.
type spreadConstraint struct {
	term       *podTerm
	soft       bool // ScheduleAnyway: a score, not a filter
	maxSkew    int64
	minDomains int32
	selfMatch  int64
	counts     map[string]int64
	min        int64
}

// parseSpread reads the pod's topology spread constraints.
func parseSpread(p *corev1.Pod) ([]*spreadConstraint, error) {
	var out []*spreadConstraint
	for i, tsc := range p.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("spec.topologySpreadConstraints[%d].labelSelector: %w", i, err)
		}
		if tsc.LabelSelector == nil {
			sel = labels.Nothing()
		}
		for _, k := range tsc.MatchLabelKeys {
			if v, ok := p.Labels[k]; ok {
				r, err := labels.NewRequirement(k, selection.Equals, []string{v})
				if err != nil {
					return nil, fmt.Errorf("spec.topologySpreadConstraints[%d].matchLabelKeys: %w", i, err)
				}
				sel = sel.Add(*r)
			}
		}
		t := &podTerm{sel: sel, namespaces: map[string]bool{p.Namespace: true}, topologyKey: tsc.TopologyKey}
		sc := &spreadConstraint{term: t, maxSkew: int64(tsc.MaxSkew), soft: tsc.WhenUnsatisfiable == corev1.ScheduleAnyway}
		if tsc.MinDomains != nil {
			sc.minDomains = *tsc.MinDomains
		}
		if sel.Matches(labels.Set(p.Labels)) {
			sc.selfMatch = 1
		}
		out = append(out, sc)
	}
	return out, nil
}

// spreadStateLocked counts, per constraint, the matching pods in each domain
// of the nodes the pod's node affinity allows; the caller holds sc.mu.
func (sc *schedCache) spreadStateLocked(c *candidate) {
	for _, s := range c.spread {
		s.counts = map[string]int64{}
		for _, n := range sc.order {
			v, ok := n.node.Labels[s.term.topologyKey]
			if !ok {
				continue
			}
			if match, _ := c.affinity.Match(n.node); !match {
				continue
			}
			if _, seen := s.counts[v]; !seen {
				s.counts[v] = 0
			}
		}
		for _, pi := range sc.podsMatching(s.term, sc.nsLabels) {
			if v, ok := sc.domainOf(pi, s.term.topologyKey); ok {
				if _, eligible := s.counts[v]; eligible {
					s.counts[v]++
				}
			}
		}
		s.min = 0
		first := true
		for _, n := range s.counts {
			if first || n < s.min {
				s.min, first = n, false
			}
		}
		if int32(len(s.counts)) < s.minDomains {
			s.min = 0
		}
	}
}

func filterSpread(c *candidate, n *nodeInfo) []string {
	for _, s := range c.spread {
		if s.soft {
			continue
		}
		v, ok := n.node.Labels[s.term.topologyKey]
		if !ok {
			return []string{reasonSpreadMissing}
		}
		if s.counts[v]+s.selfMatch-s.min > s.maxSkew {
			return []string{reasonSpread}
		}
	}
	return nil
}

// softSpreadRaw counts, over the ScheduleAnyway constraints, the matching
// pods in the node's domains; fewer is better. A node without the topology
// key counts as the fullest domain.
func softSpreadRaw(c *candidate, n *nodeInfo) int64 {
	var sum int64
	for _, s := range c.spread {
		if !s.soft {
			continue
		}
		v, ok := n.node.Labels[s.term.topologyKey]
		if !ok {
			var most int64
			for _, k := range s.counts {
				most = max(most, k)
			}
			sum += most + 1
			continue
		}
		sum += s.counts[v]
	}
	return sum
}

func hasSoftSpread(c *candidate) bool {
	for _, s := range c.spread {
		if s.soft {
			return true
		}
	}
	return false
}
