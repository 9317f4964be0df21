package reconciler

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

func nodePolicy(name string, mutate ...func(*keelsonv1alpha1.NodePolicySpec)) *keelsonv1alpha1.NodePolicy {
	p := &keelsonv1alpha1.NodePolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mutate {
		m(&p.Spec)
	}
	return p
}

func onNodes(names ...string) func(*keelsonv1alpha1.NodePolicySpec) {
	return func(s *keelsonv1alpha1.NodePolicySpec) { s.NodeNames = names }
}

func onSelector(kv ...string) func(*keelsonv1alpha1.NodePolicySpec) {
	return func(s *keelsonv1alpha1.NodePolicySpec) {
		s.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			s.NodeSelector.MatchLabels[kv[i]] = kv[i+1]
		}
	}
}

func setsLabel(k, v string) func(*keelsonv1alpha1.NodePolicySpec) {
	return func(s *keelsonv1alpha1.NodePolicySpec) {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
}

func setsTaint(k, v string, e corev1.TaintEffect) func(*keelsonv1alpha1.NodePolicySpec) {
	return func(s *keelsonv1alpha1.NodePolicySpec) {
		s.Taints = append(s.Taints, corev1.Taint{Key: k, Value: v, Effect: e})
	}
}

func cordons(s *keelsonv1alpha1.NodePolicySpec) { s.Unschedulable = true }

// describeNode is a node's labels, taints, cordon and record, in one line.
func describeNode(n *corev1.Node) string {
	var taints []string
	for _, t := range n.Spec.Taints {
		taints = append(taints, t.Key+"="+t.Value+":"+string(t.Effect))
	}
	return fmt.Sprintf("labels %v taints [%s] unschedulable %v record %s", n.Labels, strings.Join(taints, " "),
		n.Spec.Unschedulable, n.Annotations[AnnotationNodePolicyApplied])
}

// TestApplyWants runs the policies over a node twice: the second pass must
// change nothing (the controller's writes settle).
func TestApplyWants(t *testing.T) {
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	const record = AnnotationNodePolicyApplied
	tests := []struct {
		name      string
		node      *corev1.Node
		policies  []*keelsonv1alpha1.NodePolicy
		want      string // describeNode of the result
		conflicts []string
	}{
		{name: "by name",
			node:     testNode("n"),
			policies: []*keelsonv1alpha1.NodePolicy{nodePolicy("p", onNodes("n"), setsLabel("team", "db"), setsTaint("dedicated", "db", corev1.TaintEffectNoSchedule), cordons)},
			want:     `labels map[kubernetes.io/hostname:n team:db] taints [dedicated=db:NoSchedule] unschedulable true record {"labels":["team"],"taints":["dedicated:NoSchedule"],"unschedulable":true}`},
		{name: "not matching",
			node:     testNode("n"),
			policies: []*keelsonv1alpha1.NodePolicy{nodePolicy("p", onNodes("m"), setsLabel("team", "db")), nodePolicy("q", onSelector("disk", "ssd"), cordons)},
			want:     `labels map[kubernetes.io/hostname:n] taints [] unschedulable false record `},
		{name: "taken back, the others' keys stay",
			node: testNode("n", func(n *corev1.Node) {
				n.Labels["team"], n.Labels["disk"] = "db", "ssd"
				n.Spec.Taints = []corev1.Taint{unreachable, {Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
				n.Spec.Unschedulable = true
				n.Annotations = map[string]string{record: `{"labels":["team"],"taints":["dedicated:NoSchedule"],"unschedulable":true}`}
			}),
			want: `labels map[disk:ssd kubernetes.io/hostname:n] taints [node.kubernetes.io/unreachable=:NoExecute] unschedulable false record `},
		{name: "selectors see the node's own labels only",
			node: testNode("n", func(n *corev1.Node) {
				n.Labels["tier"] = "gold"
				n.Annotations = map[string]string{record: `{"labels":["tier"]}`}
			}),
			policies: []*keelsonv1alpha1.NodePolicy{nodePolicy("p", onSelector("tier", "gold"), setsLabel("x", "y"))},
			want:     `labels map[kubernetes.io/hostname:n] taints [] unschedulable false record `},
		{name: "value changed",
			node: testNode("n", func(n *corev1.Node) {
				n.Labels["team"] = "db"
				n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
				n.Annotations = map[string]string{record: `{"labels":["team"],"taints":["dedicated:NoSchedule"]}`}
			}),
			policies: []*keelsonv1alpha1.NodePolicy{nodePolicy("p", onNodes("n"), setsLabel("team", "web"), setsTaint("dedicated", "web", corev1.TaintEffectNoSchedule))},
			want:     `labels map[kubernetes.io/hostname:n team:web] taints [dedicated=web:NoSchedule] unschedulable false record {"labels":["team"],"taints":["dedicated:NoSchedule"]}`},
		{name: "conflict: first by name wins",
			node: testNode("n"),
			policies: []*keelsonv1alpha1.NodePolicy{
				nodePolicy("a", onNodes("n"), setsLabel("zone", "east"), setsTaint("k", "1", corev1.TaintEffectNoSchedule)),
				nodePolicy("b", onSelector(), setsLabel("zone", "west"), setsTaint("k", "2", corev1.TaintEffectNoSchedule), setsTaint("k", "2", corev1.TaintEffectNoExecute)),
			},
			want: `labels map[kubernetes.io/hostname:n zone:east] taints [k=2:NoExecute k=1:NoSchedule] unschedulable false record {"labels":["zone"],"taints":["k:NoExecute","k:NoSchedule"]}`,
			conflicts: []string{
				`node n: label zone: policy a sets "east", policy b sets "west"; a applies, as the first by name`,
				`node n: taint k:NoSchedule: policy a sets "1", policy b sets "2"; a applies, as the first by name`,
			}},
		{name: "the node's own keys win",
			node: testNode("n", func(n *corev1.Node) {
				n.Labels["rack"] = "r1"
				n.Spec.Taints = []corev1.Taint{{Key: "gpu", Value: "a100", Effect: corev1.TaintEffectNoSchedule}}
				n.Spec.Unschedulable = true
			}),
			policies: []*keelsonv1alpha1.NodePolicy{nodePolicy("p", onNodes("n"), setsLabel("rack", "r2"), setsLabel("os", "linux"),
				setsTaint("gpu", "h100", corev1.TaintEffectNoSchedule), cordons)},
			want: `labels map[kubernetes.io/hostname:n os:linux rack:r1] taints [gpu=a100:NoSchedule] unschedulable true record {"labels":["os"]}`,
			conflicts: []string{
				`node n: label rack is the node's own ("r1"); policy p sets "r2", which is not applied there`,
				`node n: taint gpu:NoSchedule is the node's own ("a100"); policy p sets "h100", which is not applied there`,
			}},
		{name: "a policy being deleted is taken back",
			node: testNode("n", func(n *corev1.Node) {
				n.Labels["team"] = "db"
				n.Annotations = map[string]string{record: `{"labels":["team"]}`}
			}),
			policies: []*keelsonv1alpha1.NodePolicy{func() *keelsonv1alpha1.NodePolicy {
				p := nodePolicy("p", onNodes("n"), setsLabel("team", "db"))
				p.DeletionTimestamp = &metav1.Time{}
				return p
			}()},
			want: `labels map[kubernetes.io/hostname:n] taints [] unschedulable false record `},
		{name: "already cordoned by someone else: stays cordoned when the policy goes",
			node:     testNode("n", func(n *corev1.Node) { n.Spec.Unschedulable = true }),
			policies: nil,
			want:     `labels map[kubernetes.io/hostname:n] taints [] unschedulable true record `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := readApplied(tt.node)
			if err != nil {
				t.Fatal(err)
			}
			w := wantsOf(tt.node, matchers(tt.policies), rec)
			out, _ := applyWants(tt.node, w, rec)
			if got := describeNode(out); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			var conflicts []string
			for _, c := range w.conflicts {
				conflicts = append(conflicts, c.String())
			}
			if strings.Join(conflicts, "\n") != strings.Join(tt.conflicts, "\n") {
				t.Errorf("conflicts:\n%s\nwant:\n%s", strings.Join(conflicts, "\n"), strings.Join(tt.conflicts, "\n"))
			}
			for _, p := range w.policies {
				if !carries(out, w, p) {
					t.Errorf("policy %s is not carried by the result", p)
				}
			}
			rec2, err := readApplied(out)
			if err != nil {
				t.Fatal(err)
			}
			if again, changed := applyWants(out, wantsOf(out, matchers(tt.policies), rec2), rec2); changed {
				t.Errorf("a second pass changed the node again: %s", describeNode(again))
			}
		})
	}
}

func TestNodePolicyHealth(t *testing.T) {
	withReady := func(gen, observed int64, status metav1.ConditionStatus, reason string) *keelsonv1alpha1.NodePolicy {
		p := nodePolicy("p", onNodes("n"))
		p.Generation, p.Status.ObservedGeneration = gen, observed
		if status != "" {
			p.Status.Conditions = []metav1.Condition{{Type: keelsonv1alpha1.ConditionReady, Status: status, Reason: reason, Message: "why"}}
		}
		return p
	}
	tests := []struct {
		name string
		p    *keelsonv1alpha1.NodePolicy
		want HealthStatus
	}{
		{"no status yet", withReady(1, 0, "", ""), Progressing},
		{"status of the previous generation", withReady(2, 1, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied), Progressing},
		{"applied", withReady(2, 2, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied), Healthy},
		{"nodes being written", withReady(1, 1, metav1.ConditionFalse, keelsonv1alpha1.ReasonProgressing), Progressing},
		{"conflict", withReady(1, 1, metav1.ConditionFalse, keelsonv1alpha1.ReasonConflict), Degraded},
	}
	for _, tt := range tests {
		if got := HealthOf(tt.p); got.Status != tt.want {
			t.Errorf("%s: %s (%s), want %s", tt.name, got.Status, got.Message, tt.want)
		}
	}
}
