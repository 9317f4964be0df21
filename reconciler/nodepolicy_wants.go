package reconciler

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// AnnotationNodePolicyApplied records on a Node what node policies set on
// it, as JSON: the keys of the labels, the key:effect of the taints, and
// whether they cordoned it. Only what it names is ever taken back, so the
// labels and taints of the agent and of other controllers stay.
const AnnotationNodePolicyApplied = "keelson.dev/node-policy-applied"

// applied is the content of AnnotationNodePolicyApplied.
type applied struct {
	Labels        []string `json:"labels,omitempty"`
	Taints        []string `json:"taints,omitempty"`
	Unschedulable bool     `json:"unschedulable,omitempty"`
}

// readApplied decodes a node's record; a node without one (or with one that
// does not decode) holds nothing of the policies.
func readApplied(n *corev1.Node) (applied, error) {
	var a applied
	raw, ok := n.Annotations[AnnotationNodePolicyApplied]
	if !ok {
		return a, nil
	}
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return applied{}, fmt.Errorf("node %s: annotation %s: %w", n.Name, AnnotationNodePolicyApplied, err)
	}
	return a, nil
}

func (a applied) empty() bool {
	return len(a.Labels) == 0 && len(a.Taints) == 0 && !a.Unschedulable
}

func taintID(t corev1.Taint) string { return t.Key + ":" + string(t.Effect) }

// setting is one label value or taint a policy asks for.
type setting struct {
	policy string
	value  string
	taint  corev1.Taint
}

// policyConflict is one key two policies, or a policy and the node itself,
// want different values of. The policy first by name wins; the node's own
// value (winner "") always does.
type policyConflict struct {
	node, what        string
	winner, loser     string
	winValue, loseVal string
}

func (c policyConflict) involves(policy string) bool { return c.winner == policy || c.loser == policy }

func (c policyConflict) String() string {
	if c.winner == "" {
		return fmt.Sprintf("node %s: %s is the node's own (%q); policy %s sets %q, which is not applied there",
			c.node, c.what, c.winValue, c.loser, c.loseVal)
	}
	return fmt.Sprintf("node %s: %s: policy %s sets %q, policy %s sets %q; %s applies, as the first by name",
		c.node, c.what, c.winner, c.winValue, c.loser, c.loseVal, c.winner)
}

// nodeWants is what the policies matching one node set on it.
type nodeWants struct {
	policies  []string           // the matching policies, by name
	labels    map[string]setting // by key
	taints    map[string]setting // by key:effect
	cordonBy  string             // the first policy that cordons, or ""
	conflicts []policyConflict
}

// ownLabels are the node's labels that no policy set: selectors match them
// only, so policies do not chain and a policy cannot unmatch itself.
func ownLabels(n *corev1.Node, rec applied) labels.Set {
	own := labels.Set(maps.Clone(n.Labels))
	for _, k := range rec.Labels {
		delete(own, k)
	}
	return own
}

// policyMatcher is a policy with its selector parsed once per pass.
type policyMatcher struct {
	*keelsonv1alpha1.NodePolicy
	sel labels.Selector // nil: by name only
}

// matchers prepares policies, sorted by name, for wantsOf. A policy being
// deleted matches nothing; so does a selector that does not parse, which
// schema keeps out of Git.
func matchers(policies []*keelsonv1alpha1.NodePolicy) []policyMatcher {
	out := make([]policyMatcher, 0, len(policies))
	for _, p := range policies {
		if p.DeletionTimestamp != nil {
			continue
		}
		m := policyMatcher{NodePolicy: p}
		if p.Spec.NodeSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.NodeSelector)
			if err != nil {
				sel = labels.Nothing()
			}
			m.sel = sel
		}
		out = append(out, m)
	}
	return out
}

func (m policyMatcher) matches(node string, own labels.Set) bool {
	return slices.Contains(m.Spec.NodeNames, node) || (m.sel != nil && m.sel.Matches(own))
}

// wantsOf gathers what the policies set on node n, whose record of what
// policies set before is rec.
func wantsOf(n *corev1.Node, policies []policyMatcher, rec applied) *nodeWants {
	own := ownLabels(n, rec)
	w := &nodeWants{labels: map[string]setting{}, taints: map[string]setting{}}
	for _, p := range policies {
		if !p.matches(n.Name, own) {
			continue
		}
		w.policies = append(w.policies, p.Name)
		for _, k := range slices.Sorted(maps.Keys(p.Spec.Labels)) {
			cur, exists := n.Labels[k]
			w.add(w.labels, n.Name, "label", k, setting{policy: p.Name, value: p.Spec.Labels[k]},
				cur, exists && !slices.Contains(rec.Labels, k))
		}
		for _, t := range p.Spec.Taints {
			id := taintID(t)
			cur, exists := findTaint(n.Spec.Taints, id)
			w.add(w.taints, n.Name, "taint", id, setting{policy: p.Name, value: t.Value, taint: corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect}},
				cur.Value, exists && !slices.Contains(rec.Taints, id))
		}
		if (p.Spec.Unschedulable || p.Spec.Drain) && w.cordonBy == "" {
			w.cordonBy = p.Name
		}
	}
	return w
}

// add records s under its key unless an earlier policy or the node itself
// (foreign: the key is on the node and no policy set it) holds another value.
func (w *nodeWants) add(into map[string]setting, node, kind, id string, s setting, nodeValue string, foreign bool) {
	what := kind + " " + id
	if prev, ok := into[id]; ok {
		if prev.value != s.value {
			w.conflicts = append(w.conflicts, policyConflict{node: node, what: what, winner: prev.policy, winValue: prev.value, loser: s.policy, loseVal: s.value})
		}
		return
	}
	if foreign && nodeValue != s.value {
		w.conflicts = append(w.conflicts, policyConflict{node: node, what: what, winValue: nodeValue, loser: s.policy, loseVal: s.value})
		return
	}
	into[id] = s
}

func findTaint(ts []corev1.Taint, id string) (corev1.Taint, bool) {
	for _, t := range ts {
		if taintID(t) == id {
			return t, true
		}
	}
	return corev1.Taint{}, false
}

// applyWants returns n as the policies want it: what they set before and no
// longer want is taken back, what they want is set, keys the node holds of
// its own are left alone. changed is false when n is already so.
func applyWants(n *corev1.Node, w *nodeWants, rec applied) (out *corev1.Node, changed bool) {
	cp := n.DeepCopy()
	var next applied
	cp.Labels, next.Labels = applyLabels(n.Labels, w.labels, rec.Labels)
	cp.Spec.Taints, next.Taints = applyTaints(n.Spec.Taints, w.taints, rec.Taints)
	switch {
	case w.cordonBy != "" && !n.Spec.Unschedulable:
		cp.Spec.Unschedulable, next.Unschedulable = true, true
	case w.cordonBy != "":
		next.Unschedulable = rec.Unschedulable // cordoned before: ours only if it was
	case rec.Unschedulable:
		cp.Spec.Unschedulable = false
	}
	if next.empty() {
		delete(cp.Annotations, AnnotationNodePolicyApplied)
	} else {
		b, _ := json.Marshal(next) // a struct of strings and a bool always encodes
		if cp.Annotations == nil {
			cp.Annotations = map[string]string{}
		}
		cp.Annotations[AnnotationNodePolicyApplied] = string(b)
	}
	changed = !equality.Semantic.DeepEqual(cp.Labels, n.Labels) || !equality.Semantic.DeepEqual(cp.Annotations, n.Annotations) ||
		!equality.Semantic.DeepEqual(cp.Spec.Taints, n.Spec.Taints) || cp.Spec.Unschedulable != n.Spec.Unschedulable
	return cp, changed
}

// applyLabels returns the node's labels with the wanted ones set and those
// set before (ours) but no longer wanted removed, and the keys now ours.
func applyLabels(cur map[string]string, want map[string]setting, ours []string) (map[string]string, []string) {
	out := maps.Clone(cur)
	for _, k := range ours {
		if _, wanted := want[k]; !wanted {
			delete(out, k)
		}
	}
	var set []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if _, exists := cur[k]; exists && !slices.Contains(ours, k) {
			continue // the node's own, with the same value
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = want[k].value
		set = append(set, k)
	}
	return out, set
}

// applyTaints does for taints, by key and effect, what applyLabels does.
func applyTaints(cur []corev1.Taint, want map[string]setting, ours []string) ([]corev1.Taint, []string) {
	var out []corev1.Taint
	var set []string
	for _, t := range cur {
		id := taintID(t)
		w, wanted := want[id]
		switch {
		case !slices.Contains(ours, id):
			out = append(out, t)
		case wanted:
			t.Value = w.value
			out = append(out, t)
			set = append(set, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if _, exists := findTaint(cur, id); !exists {
			out = append(out, want[id].taint)
			set = append(set, id)
		}
	}
	slices.Sort(set)
	return out, set
}

// carries reports whether node n holds what policy p sets on it, leaving out
// the keys p lost in a conflict.
func carries(n *corev1.Node, w *nodeWants, p string) bool {
	for k, s := range w.labels {
		if s.policy == p && n.Labels[k] != s.value {
			return false
		}
	}
	for id, s := range w.taints {
		if t, ok := findTaint(n.Spec.Taints, id); s.policy == p && (!ok || t.Value != s.value) {
			return false
		}
	}
	return w.cordonBy != p || n.Spec.Unschedulable
}
