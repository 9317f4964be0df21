package schema

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

func TestNodePolicyValid(t *testing.T) {
	src := `apiVersion: keelson.dev/v1alpha1
kind: NodePolicy
metadata:
  name: gpu-pool
spec:
  nodeNames: [node-1, node-2.example.com]
  nodeSelector:
    matchLabels: {pool: gpu}
    matchExpressions:
    - {key: zone, operator: In, values: [a, b]}
  labels:
    node-role.kubernetes.io/gpu: ""
    example.com/team: ml
  taints:
  - {key: nvidia.com/gpu, value: present, effect: NoSchedule}
  - {key: nvidia.com/gpu, effect: NoExecute}
  unschedulable: true
  drain: true
---
apiVersion: keelson.dev/v1alpha1
kind: NodePolicy
metadata: {name: everywhere}
spec:
  nodeSelector: {}
  labels: {managed: "yes"}
`
	objs, errs := validate(t, "nodes/gpu.yaml", src)
	if len(errs) > 0 || len(objs) != 2 {
		t.Fatalf("want two policies accepted, got %d and errors:\n%s", len(objs), strings.Join(errs, "\n"))
	}
	p, ok := objs[0].Object.(*keelsonv1alpha1.NodePolicy)
	if !ok {
		t.Fatalf("decoded into %T, want *v1alpha1.NodePolicy", objs[0].Object)
	}
	if objs[0].Namespace != "" || p.Name != "gpu-pool" || !p.Spec.Unschedulable || !p.Spec.Drain || len(p.Spec.NodeNames) != 2 ||
		p.Spec.Labels["example.com/team"] != "ml" || len(p.Spec.Taints) != 2 ||
		p.Spec.Taints[0] != (corev1.Taint{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}) ||
		p.Spec.NodeSelector.MatchLabels["pool"] != "gpu" {
		t.Errorf("decoded %+v (namespace %q)", p.Spec, objs[0].Namespace)
	}
	if sel := objs[1].Object.(*keelsonv1alpha1.NodePolicy).Spec.NodeSelector; sel == nil {
		t.Error("nodeSelector: {} was dropped: it must stay, as the selector of every node")
	}
}

func TestNodePolicyInvalid(t *testing.T) {
	const head = "apiVersion: keelson.dev/v1alpha1\nkind: NodePolicy\nmetadata:\n  name: p\n"
	tests := []struct {
		name, src string
		want      []string // every error, in order
	}{
		{"no way to match nodes", head + "spec:\n  labels: {a: b}\n",
			[]string{"x.yaml:5:1: NodePolicy p: spec: nodeNames or nodeSelector is required"}},
		{"namespaced", "apiVersion: keelson.dev/v1alpha1\nkind: NodePolicy\nmetadata:\n  name: p\n  namespace: prod\nspec:\n  nodeNames: [a]\n",
			[]string{"x.yaml:5:14: NodePolicy prod/p: metadata.namespace: must be empty: a NodePolicy is not namespaced"}},
		{"label key and value", head + "spec:\n  nodeNames: [a]\n  labels:\n    -bad: x\n    good: not valid!\n",
			[]string{
				`x.yaml:8:11: NodePolicy p: spec.labels["-bad"]: must be a label key`,
				"x.yaml:9:11: NodePolicy p: spec.labels.good: must be a label value",
			}},
		{"taint effect", head + "spec:\n  nodeNames: [a]\n  taints:\n  - key: dedicated\n    value: db\n    effect: NoWay\n",
			[]string{"x.yaml:10:13: NodePolicy p: spec.taints[0].effect: must be NoSchedule, PreferNoSchedule or NoExecute"}},
		{"taint without key", head + "spec:\n  nodeNames: [a]\n  taints:\n  - {effect: NoSchedule}\n",
			[]string{"x.yaml:8:5: NodePolicy p: spec.taints[0].key: required field is missing"}},
		{"taint time", head + "spec:\n  nodeNames: [a]\n  taints:\n  - {key: k, effect: NoExecute, timeAdded: \"2024-01-01T00:00:00Z\"}\n",
			[]string{"x.yaml:8:44: NodePolicy p: spec.taints[0].timeAdded: must not be set"}},
		{"bad node name", head + "spec:\n  nodeNames: [Node_1]\n",
			[]string{"x.yaml:6:15: NodePolicy p: spec.nodeNames[0]: must be a DNS subdomain"}},
		{"selector that does not parse", head + "spec:\n  nodeSelector:\n    matchExpressions: [{key: zone, operator: In}]\n",
			[]string{"x.yaml:6:3: NodePolicy p: spec.nodeSelector: invalid selector: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"}},
		{"selector operator", head + "spec:\n  nodeSelector:\n    matchExpressions: [{key: zone, operator: Within, values: [a]}]\n",
			[]string{"x.yaml:7:46: NodePolicy p: spec.nodeSelector.matchExpressions[0].operator: must be In, NotIn, Exists or DoesNotExist"}},
		{"agent's label", head + "spec:\n  nodeNames: [a]\n  labels: {kubernetes.io/hostname: b}\n",
			[]string{"x.yaml:7:12: NodePolicy p: spec.labels[\"kubernetes.io/hostname\"]: set by each node's agent"}},
		{"control plane's taint", head + "spec:\n  nodeNames: [a]\n  taints: [{key: node.kubernetes.io/unreachable, effect: NoExecute}]\n",
			[]string{"x.yaml:7:13: NodePolicy p: spec.taints[0].key: taints under node.kubernetes.io/ are set by keelson"}},
		{"duplicate taint", head + "spec:\n  nodeNames: [a, a]\n  taints:\n  - {key: k, value: x, effect: NoSchedule}\n  - {key: k, value: y, effect: NoSchedule}\n",
			[]string{
				`x.yaml:6:18: NodePolicy p: spec.nodeNames[1]: duplicate node name "a", also at nodeNames[0]`,
				"x.yaml:9:5: NodePolicy p: spec.taints[1]: duplicate taint k:NoSchedule, also at taints[0]",
			}},
		{"unknown field", head + "spec:\n  nodeNames: [a]\n  cordon: true\n",
			[]string{"x.yaml:7:3: NodePolicy p: spec.cordon: field not allowed (no such field in NodePolicy)"}},
		{"status from Git", head + "spec:\n  nodeNames: [a]\nstatus: {nodes: [a]}\n",
			[]string{"x.yaml:7:1: NodePolicy p: status: field not allowed (no such field in NodePolicy)"}},
		{"unschedulable not a bool", head + "spec:\n  nodeNames: [a]\n  unschedulable: yes\n",
			[]string{"x.yaml:7:18: NodePolicy p: spec.unschedulable: "}},
		{"drain not a bool", head + "spec:\n  nodeNames: [a]\n  drain: please\n",
			[]string{"x.yaml:7:10: NodePolicy p: spec.drain: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := validate(t, "x.yaml", tt.src)
			if len(objs) != 0 {
				t.Errorf("invalid policy accepted")
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("errors:\n%s\nwant %d:\n%s", strings.Join(errs, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i := range errs {
				if !strings.HasPrefix(errs[i], tt.want[i]) {
					t.Errorf("error %d:\n  %s\nwant it to start\n  %s", i, errs[i], tt.want[i])
				}
			}
		})
	}
}
