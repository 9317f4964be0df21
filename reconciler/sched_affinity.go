package reconciler

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Reasons of the inter-pod affinity filter, in kube-scheduler's words.
const (
	reasonPodAffinity     = "node(s) didn't match pod affinity rules"
	reasonPodAntiAffinity = "node(s) didn't match pod anti-affinity rules"
	reasonExistingAntiAff = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// podTerm is a pod affinity term made ready to match: its selector parsed and
// its namespaces resolved against the pod that carries it.
type podTerm struct {
	sel         labels.Selector
	namespaces  map[string]bool // nil with allNS
	nsSel       labels.Selector // nil when the term names namespaces only
	topologyKey string
	weight      int32 // preferred terms only
	groupKey    string
}

func newPodTerm(owner *corev1.Pod, t *corev1.PodAffinityTerm, weight int32) (*podTerm, error) {
	sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
	if err != nil {
		return nil, err
	}
	if t.LabelSelector == nil {
		sel = labels.Nothing()
	}
	pt := &podTerm{sel: sel, topologyKey: t.TopologyKey, weight: weight}
	if t.NamespaceSelector != nil {
		if pt.nsSel, err = metav1.LabelSelectorAsSelector(t.NamespaceSelector); err != nil {
			return nil, err
		}
	}
	if len(t.Namespaces) > 0 || t.NamespaceSelector == nil {
		pt.namespaces = map[string]bool{}
		for _, ns := range t.Namespaces {
			pt.namespaces[ns] = true
		}
		if len(t.Namespaces) == 0 {
			pt.namespaces[owner.Namespace] = true
		}
	}
	pt.groupKey = pt.computeKey()
	return pt, nil
}

// computeKey identifies terms that match the same pods in the same way, so
// that the existing pods' anti-affinity is kept per distinct term, not per pod.
func (t *podTerm) computeKey() string {
	ns := make([]string, 0, len(t.namespaces))
	for n := range t.namespaces {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	nsSel := ""
	if t.nsSel != nil {
		nsSel = t.nsSel.String()
	}
	return fmt.Sprintf("%s|%s|%s|%s", t.sel, strings.Join(ns, ","), nsSel, t.topologyKey)
}

// matches reports whether the term selects pod p; nsLabels looks a
// namespace's labels up for namespace selectors.
func (t *podTerm) matches(p *corev1.Pod, nsLabels func(string) labels.Set) bool {
	inNS := t.namespaces[p.Namespace]
	if !inNS && t.nsSel != nil {
		inNS = t.nsSel.Matches(nsLabels(p.Namespace))
	}
	return inNS && t.sel.Matches(labels.Set(p.Labels))
}

// podTerms parses a list of required terms.
func podTerms(owner *corev1.Pod, ts []corev1.PodAffinityTerm) ([]*podTerm, error) {
	var out []*podTerm
	for i := range ts {
		t, err := newPodTerm(owner, &ts[i], 0)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func weightedTerms(owner *corev1.Pod, ts []corev1.WeightedPodAffinityTerm, sign int32) ([]*podTerm, error) {
	var out []*podTerm
	for i := range ts {
		t, err := newPodTerm(owner, &ts[i].PodAffinityTerm, sign*ts[i].Weight)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// requiredAntiAffinity returns the pod's required anti-affinity terms.
func requiredAntiAffinity(p *corev1.Pod) []*podTerm {
	if p.Spec.Affinity == nil || p.Spec.Affinity.PodAntiAffinity == nil {
		return nil
	}
	ts, _ := podTerms(p, p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	return ts
}

// antiGroup is every bound pod carrying the same required anti-affinity
// term, counted per node.
type antiGroup struct {
	term  *podTerm
	nodes map[string]int
}

// topology is a set of (topology key, value) domains; a slice, since pods
// name few keys and it is read for every node visited.
type topology []domains

type domains struct {
	key    string
	values map[string]bool
}

func (t *topology) add(key, value string) {
	for _, d := range *t {
		if d.key == key {
			d.values[value] = true
			return
		}
	}
	*t = append(*t, domains{key: key, values: map[string]bool{value: true}})
}

// hits reports whether the node lies in one of the domains.
func (t topology) hits(n *corev1.Node) bool {
	for _, d := range t {
		if v, ok := n.Labels[d.key]; ok && d.values[v] {
			return true
		}
	}
	return false
}

// podsMatching returns the bound pods the term selects, narrowed first
// through the label index by one of the selector's equality requirements.
func (sc *schedCache) podsMatching(t *podTerm, nsLabels func(string) labels.Set) []*podInfo {
	pool := sc.pods
	reqs, _ := t.sel.Requirements()
	for _, r := range reqs {
		op := r.Operator()
		if (op == selection.Equals || op == selection.DoubleEquals || op == selection.In) && r.Values().Len() == 1 {
			pool = sc.byLabel[r.Key()+"="+r.Values().UnsortedList()[0]]
			break
		}
	}
	var out []*podInfo
	for _, pi := range pool {
		if t.matches(pi.pod, nsLabels) {
			out = append(out, pi)
		}
	}
	return out
}

// domainOf returns the topology value of the node a pod is on.
func (sc *schedCache) domainOf(pi *podInfo, key string) (string, bool) {
	n := sc.nodes[pi.node]
	if n == nil || n.node == nil {
		return "", false
	}
	v, ok := n.node.Labels[key]
	return v, ok
}

// podAffinityState is what the inter-pod affinity filter needs for one pod,
// computed once before the nodes are visited.
type podAffinityState struct {
	forbiddenByExisting topology
	forbiddenByPod      topology
	required            []topology // one per required affinity term; nil: no constraint
	preferred           []preferredCounts
}

// preferredCounts is, for one preferred term of the candidate, how many
// matching pods each domain holds.
type preferredCounts struct {
	term   *podTerm
	counts map[string]int64
}

// podAffinityStateLocked computes the domains the candidate may not or must
// go to; the caller holds sc.mu.
func (sc *schedCache) podAffinityStateLocked(c *candidate, nsLabels func(string) labels.Set) *podAffinityState {
	st := &podAffinityState{}
	for _, g := range sc.anti {
		if !g.term.matches(c.pod, nsLabels) {
			continue
		}
		for node := range g.nodes {
			if n := sc.nodes[node]; n != nil && n.node != nil {
				if v, ok := n.node.Labels[g.term.topologyKey]; ok {
					st.forbiddenByExisting.add(g.term.topologyKey, v)
				}
			}
		}
	}
	for _, t := range c.antiAffinity {
		for _, pi := range sc.podsMatching(t, nsLabels) {
			if v, ok := sc.domainOf(pi, t.topologyKey); ok {
				st.forbiddenByPod.add(t.topologyKey, v)
			}
		}
	}
	for _, t := range c.podAff {
		var allowed topology
		for _, pi := range sc.podsMatching(t, nsLabels) {
			if v, ok := sc.domainOf(pi, t.topologyKey); ok {
				allowed.add(t.topologyKey, v)
			}
		}
		if len(allowed) == 0 && t.matches(c.pod, nsLabels) {
			continue // the first pod of a group that wants to be together
		}
		st.required = append(st.required, allowed)
	}
	for _, t := range c.preferredPods {
		pc := preferredCounts{term: t, counts: map[string]int64{}}
		for _, pi := range sc.podsMatching(t, nsLabels) {
			if v, ok := sc.domainOf(pi, t.topologyKey); ok {
				pc.counts[v]++
			}
		}
		st.preferred = append(st.preferred, pc)
	}
	return st
}

// preferredPodAffinityRaw sums, over the candidate's preferred terms, the
// weight (negative for anti-affinity) times the matching pods in the node's
// domain.
func preferredPodAffinityRaw(c *candidate, n *nodeInfo) int64 {
	if c.podAffinity == nil {
		return 0
	}
	var sum int64
	for _, pc := range c.podAffinity.preferred {
		if v, ok := n.node.Labels[pc.term.topologyKey]; ok {
			sum += int64(pc.term.weight) * pc.counts[v]
		}
	}
	return sum
}

func filterPodAffinity(c *candidate, n *nodeInfo) []string {
	st := c.podAffinity
	if st == nil {
		return nil
	}
	if len(st.forbiddenByExisting) > 0 && st.forbiddenByExisting.hits(n.node) {
		return []string{reasonExistingAntiAff}
	}
	for _, allowed := range st.required {
		if !allowed.hits(n.node) {
			return []string{reasonPodAffinity}
		}
	}
	if len(st.forbiddenByPod) > 0 && st.forbiddenByPod.hits(n.node) {
		return []string{reasonPodAntiAffinity}
	}
	return nil
}
