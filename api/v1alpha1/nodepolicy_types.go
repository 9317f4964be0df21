package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodePolicy declares, in Git, labels, taints and cordoning for the nodes it
// matches, since nobody writes to keelson's API: the reconciler applies it to
// every matching Node and takes it back from nodes that stop matching or when
// the policy leaves Git. Cluster-scoped.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type NodePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NodePolicySpec   `json:"spec"`
	Status NodePolicyStatus `json:"status,omitempty"`
}

// NodePolicySpec says which nodes and what to set on them. A node matches
// when its name is in NodeNames or its labels match NodeSelector (either;
// at least one of them must be set).
type NodePolicySpec struct {
	// NodeNames lists nodes by name.
	NodeNames []string `json:"nodeNames,omitempty"`
	// NodeSelector matches nodes by their labels.
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	// Labels are set on matching nodes.
	Labels map[string]string `json:"labels,omitempty"`
	// Taints are set on matching nodes (by key and effect).
	Taints []corev1.Taint `json:"taints,omitempty"`
	// Unschedulable, when true, cordons matching nodes: no new pod is
	// scheduled on them (spec.unschedulable).
	Unschedulable bool `json:"unschedulable,omitempty"`
	// Drain, when true, cordons matching nodes and evicts their pods, as
	// kubectl drain --ignore-daemonsets does: one at a time, each only
	// while the PodDisruptionBudgets that select it allow a disruption.
	// DaemonSet pods and pods already ending stay.
	Drain bool `json:"drain,omitempty"`
}

// NodePolicyStatus reports what the policy matched.
type NodePolicyStatus struct {
	// ObservedGeneration is the generation last applied.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Nodes the policy matched and applied to, sorted.
	Nodes []string `json:"nodes,omitempty"`
	// Conditions: Ready is True when every matched node carries the policy,
	// False with a reason (Conflict when two policies set one label or taint
	// to different values on a node).
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ConditionDrained is the condition of a NodePolicy that drains: True once
// no pod is left to evict on its nodes, False (ReasonDraining) while pods
// wait, the message naming the budgets that hold them.
const ConditionDrained = "Drained"

// Reasons of a NodePolicy's Drained condition.
const (
	// ReasonDrained: every matched node is cordoned and holds no pod to evict.
	ReasonDrained = "Drained"
	// ReasonDraining: pods are left to evict, or wait for their budgets.
	ReasonDraining = "Draining"
)

// Reasons of a NodePolicy's Ready condition.
const (
	// ReasonApplied: every node the policy matches carries what it sets.
	ReasonApplied = "Applied"
	// ReasonConflict: on some node, another policy (or the node itself)
	// sets one of the policy's labels or taints to another value.
	ReasonConflict = "Conflict"
)

// NodePolicyList is a list of NodePolicies.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type NodePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodePolicy `json:"items"`
}
