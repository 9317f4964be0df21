package reconciler

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// testNode is a Ready node with 4 CPUs, 8Gi, 100Gi of ephemeral storage and
// room for 110 pods.
func testNode(name string, mutate ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"),
				corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"), corev1.ResourcePods: resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func testPod(name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "web:1"}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func requests(cpu, mem string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		p.Spec.Containers[0].Resources.Requests = l
	}
}

// infoWith is a node with the given pods bound.
func infoWith(n *corev1.Node, pods ...*corev1.Pod) *nodeInfo {
	c := newSchedCache()
	c.setNode(n.Name, n)
	for _, p := range pods {
		p.Spec.NodeName = n.Name
		c.setPod(p.UID, p)
	}
	return c.nodes[n.Name]
}

func mustCandidate(t *testing.T, p *corev1.Pod) *candidate {
	t.Helper()
	c, err := newCandidate(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFilters(t *testing.T) {
	withLabels := func(kv ...string) func(*corev1.Node) {
		return func(n *corev1.Node) {
			for i := 0; i < len(kv); i += 2 {
				n.Labels[kv[i]] = kv[i+1]
			}
		}
	}
	taint := func(k, v string, e corev1.TaintEffect) func(*corev1.Node) {
		return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: k, Value: v, Effect: e}) }
	}
	tolerate := func(k, v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: k, Operator: corev1.TolerationOpEqual, Value: v})
		}
	}
	required := func(reqs ...corev1.NodeSelectorRequirement) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: reqs}},
				}}}
		}
	}
	req := func(k string, op corev1.NodeSelectorOperator, vs ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: k, Operator: op, Values: vs}
	}
	hostPort := func(port int32) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 80, HostPort: port})
		}
	}
	initContainer := func(cpu string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "init", Image: "init:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}})
		}
	}
	sidecar := func(cpu string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "side", Image: "side:1",
				RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Resources:     corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}})
		}
	}
	tests := []struct {
		name  string
		node  *corev1.Node
		bound []*corev1.Pod
		pod   *corev1.Pod
		want  []string
	}{
		{name: "fits", node: testNode("n"), pod: testPod("p", requests("1", "1Gi"))},
		{name: "not ready", node: testNode("n", func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionUnknown }),
			pod: testPod("p"), want: []string{reasonNotReady}},
		{name: "no ready condition", node: testNode("n", func(n *corev1.Node) { n.Status.Conditions = nil }),
			pod: testPod("p"), want: []string{reasonNotReady}},
		{name: "cordoned", node: testNode("n", func(n *corev1.Node) { n.Spec.Unschedulable = true }),
			pod: testPod("p"), want: []string{reasonUnschedulable}},
		{name: "cordoned but tolerated", node: testNode("n", func(n *corev1.Node) { n.Spec.Unschedulable = true }),
			pod: testPod("p", func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists}}
			})},
		{name: "cpu", node: testNode("n"), bound: []*corev1.Pod{testPod("a", requests("3", ""))},
			pod: testPod("p", requests("1500m", "")), want: []string{reasonCPU}},
		{name: "cpu and memory", node: testNode("n"), bound: []*corev1.Pod{testPod("a", requests("3", "7Gi"))},
			pod: testPod("p", requests("2", "2Gi")), want: []string{reasonCPU, reasonMemory}},
		{name: "exactly full fits", node: testNode("n"), bound: []*corev1.Pod{testPod("a", requests("3", "7Gi"))},
			pod: testPod("p", requests("1", "1Gi"))},
		{name: "ephemeral storage", node: testNode("n"), pod: testPod("p", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("200Gi")}
		}), want: []string{reasonEphemeral}},
		{name: "pod count", node: testNode("n", func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourcePods] = resource.MustParse("1") }),
			bound: []*corev1.Pod{testPod("a")}, pod: testPod("p"), want: []string{reasonTooManyPods}},
		{name: "finished pods free their room", node: testNode("n"),
			bound: []*corev1.Pod{testPod("a", requests("4", ""), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
			pod:   testPod("p", requests("1", ""))},
		{name: "init container larger than containers counts", node: testNode("n"),
			pod: testPod("p", requests("1", ""), initContainer("5")), want: []string{reasonCPU}},
		{name: "init container smaller than containers does not add", node: testNode("n"), bound: []*corev1.Pod{testPod("a", requests("1", ""))},
			pod: testPod("p", requests("3", ""), initContainer("2"))},
		{name: "sidecar adds to containers", node: testNode("n"), bound: []*corev1.Pod{testPod("a", requests("1", ""))},
			pod: testPod("p", requests("2", ""), sidecar("1500m")), want: []string{reasonCPU}},
		{name: "host port taken", node: testNode("n"), bound: []*corev1.Pod{testPod("a", hostPort(8080))},
			pod: testPod("p", hostPort(8080)), want: []string{reasonPorts}},
		{name: "other host port free", node: testNode("n"), bound: []*corev1.Pod{testPod("a", hostPort(8080))},
			pod: testPod("p", hostPort(8081))},
		{name: "node selector matches", node: testNode("n", withLabels("disk", "ssd")),
			pod: testPod("p", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} })},
		{name: "node selector misses", node: testNode("n", withLabels("disk", "hdd")),
			pod: testPod("p", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }), want: []string{reasonAffinity}},
		{name: "affinity In", node: testNode("n", withLabels("zone", "a")), pod: testPod("p", required(req("zone", corev1.NodeSelectorOpIn, "a", "b")))},
		{name: "affinity In misses", node: testNode("n", withLabels("zone", "c")),
			pod: testPod("p", required(req("zone", corev1.NodeSelectorOpIn, "a", "b"))), want: []string{reasonAffinity}},
		{name: "affinity NotIn", node: testNode("n", withLabels("zone", "a")),
			pod: testPod("p", required(req("zone", corev1.NodeSelectorOpNotIn, "a"))), want: []string{reasonAffinity}},
		{name: "affinity Exists", node: testNode("n", withLabels("gpu", "")), pod: testPod("p", required(req("gpu", corev1.NodeSelectorOpExists)))},
		{name: "affinity DoesNotExist", node: testNode("n", withLabels("gpu", "")),
			pod: testPod("p", required(req("gpu", corev1.NodeSelectorOpDoesNotExist))), want: []string{reasonAffinity}},
		{name: "affinity Gt", node: testNode("n", withLabels("cores", "16")), pod: testPod("p", required(req("cores", corev1.NodeSelectorOpGt, "8")))},
		{name: "affinity Lt misses", node: testNode("n", withLabels("cores", "16")),
			pod: testPod("p", required(req("cores", corev1.NodeSelectorOpLt, "8"))), want: []string{reasonAffinity}},
		{name: "untolerated NoSchedule taint", node: testNode("n", taint("dedicated", "db", corev1.TaintEffectNoSchedule)),
			pod: testPod("p"), want: []string{"node(s) had untolerated taint {dedicated: db}"}},
		{name: "untolerated NoExecute taint", node: testNode("n", taint("dedicated", "db", corev1.TaintEffectNoExecute)),
			pod: testPod("p"), want: []string{"node(s) had untolerated taint {dedicated: db}"}},
		{name: "tolerated taint", node: testNode("n", taint("dedicated", "db", corev1.TaintEffectNoSchedule)),
			pod: testPod("p", tolerate("dedicated", "db"))},
		{name: "toleration of another value", node: testNode("n", taint("dedicated", "db", corev1.TaintEffectNoSchedule)),
			pod: testPod("p", tolerate("dedicated", "web")), want: []string{"node(s) had untolerated taint {dedicated: db}"}},
		{name: "PreferNoSchedule does not filter", node: testNode("n", taint("dedicated", "db", corev1.TaintEffectPreferNoSchedule)),
			pod: testPod("p")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fits(mustCandidate(t, tt.pod), infoWith(tt.node, tt.bound...))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fits = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFitErrorMessage(t *testing.T) {
	e := &fitError{nodes: 5, reasons: map[string]int{
		reasonCPU: 3, "node(s) had untolerated taint {dedicated: db}": 2,
	}}
	want := "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: db}."
	if got := e.Error(); got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestScheduleExplainsEveryNode(t *testing.T) {
	c := newSchedCache()
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		n := testNode(name)
		if i >= 3 {
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		}
		c.setNode(name, n)
	}
	_, err := c.schedule(mustCandidate(t, testPod("p", requests("8", ""))), testRand())
	want := "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: db}."
	if err == nil || err.Error() != want {
		t.Fatalf("schedule error = %v, want %q", err, want)
	}
}

func TestScheduleAssumesCapacity(t *testing.T) {
	c := newSchedCache()
	c.setNode("a", testNode("a"))
	for i := range 4 {
		if _, err := c.schedule(mustCandidate(t, testPod(string(rune('p'+i)), requests("1", ""))), testRand()); err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
	}
	if _, err := c.schedule(mustCandidate(t, testPod("z", requests("1", ""))), testRand()); err == nil {
		t.Fatal("fifth pod of 1 CPU fit on a 4-CPU node")
	}
	c.forget(types.UID("uid-p"))
	if _, err := c.schedule(mustCandidate(t, testPod("z", requests("1", ""))), testRand()); err != nil {
		t.Fatalf("after a failed binding was forgotten: %v", err)
	}
}
