package schema

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// agentLabels are the labels every node's agent sets on its own Node: a
// policy setting them would fight the agent, and taking them back would
// remove the agent's.
var agentLabels = map[string]bool{
	corev1.LabelHostname:   true,
	corev1.LabelOSStable:   true,
	corev1.LabelArchStable: true,
}

// reservedTaintPrefix is where the control plane's own taints live
// (node.kubernetes.io/unreachable, …), set from the node's state.
const reservedTaintPrefix = "node.kubernetes.io/"

// checkNodePolicy requires a way to match nodes, a selector apimachinery
// parses, taints unique by key and effect, and keeps policies off the keys
// the agent and the control plane set themselves.
func checkNodePolicy(spec *keelsonv1alpha1.NodePolicySpec) []fieldProblem {
	var ps []fieldProblem
	if len(spec.NodeNames) == 0 && spec.NodeSelector == nil {
		ps = append(ps, fieldProblem{sels("spec"), "nodeNames or nodeSelector is required: say which nodes the policy applies to (nodeSelector: {} matches every node)"})
	}
	seen := map[string]int{}
	for i, n := range spec.NodeNames {
		if j, dup := seen[n]; dup {
			ps = append(ps, fieldProblem{sels("spec", "nodeNames", i), fmt.Sprintf("duplicate node name %q, also at nodeNames[%d]", n, j)})
		}
		seen[n] = i
	}
	if spec.NodeSelector != nil && knownOperators(spec.NodeSelector) {
		if _, err := metav1.LabelSelectorAsSelector(spec.NodeSelector); err != nil {
			ps = append(ps, fieldProblem{sels("spec", "nodeSelector"), "invalid selector: " + err.Error()})
		}
	}
	for k := range spec.Labels {
		if agentLabels[k] {
			ps = append(ps, fieldProblem{sels("spec", "labels", k), "set by each node's agent from the machine itself; a policy cannot set it"})
		}
	}
	taints := map[string]int{}
	for i, t := range spec.Taints {
		if strings.HasPrefix(t.Key, reservedTaintPrefix) {
			ps = append(ps, fieldProblem{sels("spec", "taints", i, "key"),
				"taints under " + reservedTaintPrefix + " are set by keelson from the node's state; use a key of your own"})
		}
		id := t.Key + ":" + string(t.Effect)
		if j, dup := taints[id]; dup {
			ps = append(ps, fieldProblem{sels("spec", "taints", i), fmt.Sprintf("duplicate taint %s, also at taints[%d]: a node has one taint per key and effect", id, j)})
		}
		taints[id] = i
	}
	return ps
}

// knownOperators reports whether every expression of sel has an operator
// the CUE definition accepts; an unknown one is reported there already.
func knownOperators(sel *metav1.LabelSelector) bool {
	for _, e := range sel.MatchExpressions {
		switch e.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
		default:
			return false
		}
	}
	return true
}
