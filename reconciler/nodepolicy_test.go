package reconciler

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func getPolicy(t *testing.T, st *store.Store, name string) *keelsonv1alpha1.NodePolicy {
	t.Helper()
	p := &keelsonv1alpha1.NodePolicy{}
	if err := st.Get(t.Context(), "", name, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// changePolicy rewrites a policy's spec as a new commit would, retrying when
// the controller's status write came first.
func changePolicy(t *testing.T, st *store.Store, name string, mutate func(*keelsonv1alpha1.NodePolicySpec)) {
	t.Helper()
	for range 20 {
		p := getPolicy(t, st, name)
		mutate(&p.Spec)
		err := st.Update(t.Context(), p)
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
	t.Fatalf("policy %s: too many conflicts", name)
}

// changeNode rewrites a node as its agent would, retrying on conflicts.
func changeNode(t *testing.T, st *store.Store, name string, mutate func(*corev1.Node)) {
	t.Helper()
	for range 20 {
		n := getNode(t, st, name)
		mutate(n)
		err := st.Update(t.Context(), n)
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
	t.Fatalf("node %s: too many conflicts", name)
}

func deletePolicy(t *testing.T, st *store.Store, name string) {
	t.Helper()
	if err := st.Delete(t.Context(), store.MustResource("nodepolicies.keelson.dev"), "", name, nil); err != nil {
		t.Fatal(err)
	}
}

// waitNode waits until node name is described (describeNode) as want.
func waitNode(t *testing.T, st *store.Store, name, want string) {
	t.Helper()
	eventually(t, "node "+name+": "+want, func() (bool, string) {
		got := describeNode(getNode(t, st, name))
		return got == want, got
	})
}

// waitReady waits until the policy's status is for its generation, names
// nodes and has Ready with status and reason, and returns the message.
func waitReady(t *testing.T, st *store.Store, name string, nodes []string, status metav1.ConditionStatus, reason string) string {
	t.Helper()
	var msg string
	eventually(t, fmt.Sprintf("policy %s: nodes %v, Ready %s %s", name, nodes, status, reason), func() (bool, string) {
		p := getPolicy(t, st, name)
		c := meta.FindStatusCondition(p.Status.Conditions, keelsonv1alpha1.ConditionReady)
		if c == nil {
			return false, fmt.Sprintf("no Ready condition; status %+v", p.Status)
		}
		msg = c.Message
		return p.Status.ObservedGeneration == p.Generation && c.ObservedGeneration == p.Generation &&
				fmt.Sprint(p.Status.Nodes) == fmt.Sprint(nodes) && c.Status == status && c.Reason == reason,
			fmt.Sprintf("generation %d, status %+v", p.Generation, p.Status)
	})
	return msg
}

const (
	dbNode   = `labels map[kubernetes.io/hostname:a storage:fast team:db] taints [dedicated=db:NoSchedule] unschedulable false record {"labels":["storage","team"],"taints":["dedicated:NoSchedule"]}`
	fastNode = `labels map[kubernetes.io/hostname:%s storage:fast] taints [] unschedulable false record {"labels":["storage"]}`
)

// TestNodePolicyByNameAndSelector: a policy naming a node sets a label and a
// taint on it, one with a selector sets a label on every node it selects;
// a node that comes to match gets it, a node no longer named loses it.
func TestNodePolicyByNameAndSelector(t *testing.T) {
	st := etcdtest.NewStore(t)
	ssd := func(n *corev1.Node) { n.Labels["disk"] = "ssd" }
	createObj(t, st, testNode("a", ssd))
	createObj(t, st, testNode("b"))
	createObj(t, st, testNode("c", ssd))
	startControllers(t, st, testOptions())
	createObj(t, st, nodePolicy("db", onNodes("a"), setsLabel("team", "db"), setsTaint("dedicated", "db", corev1.TaintEffectNoSchedule)))
	createObj(t, st, nodePolicy("fast-disks", onSelector("disk", "ssd"), setsLabel("storage", "fast")))

	withDisk := strings.Replace(dbNode, "kubernetes.io/hostname:a", "disk:ssd kubernetes.io/hostname:a", 1)
	waitNode(t, st, "a", withDisk)
	waitNode(t, st, "c", strings.Replace(fmt.Sprintf(fastNode, "c"), "labels map[", "labels map[disk:ssd ", 1))
	waitNode(t, st, "b", `labels map[kubernetes.io/hostname:b] taints [] unschedulable false record `)
	waitReady(t, st, "db", []string{"a"}, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied)
	waitReady(t, st, "fast-disks", []string{"a", "c"}, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied)

	changeNode(t, st, "b", ssd) // its agent now reports a disk
	waitNode(t, st, "b", strings.Replace(fmt.Sprintf(fastNode, "b"), "labels map[", "labels map[disk:ssd ", 1))
	waitReady(t, st, "fast-disks", []string{"a", "b", "c"}, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied)

	changePolicy(t, st, "db", func(s *keelsonv1alpha1.NodePolicySpec) { s.NodeNames = []string{"c"} })
	waitNode(t, st, "a", `labels map[disk:ssd kubernetes.io/hostname:a storage:fast] taints [] unschedulable false record {"labels":["storage"]}`)
	waitNode(t, st, "c", strings.Replace(strings.Replace(withDisk, ":a ", ":c ", 1), "hostname:a", "hostname:c", 1))
	waitReady(t, st, "db", []string{"c"}, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied)
}

// TestNodePolicyCordon: a policy cordons a node; the scheduler places no new
// pod there while the pods it has stay; without the policy the node takes
// pods again.
func TestNodePolicyCordon(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("n1"))
	createObj(t, st, testNode("n2"))
	heartbeat(t, st, "n1")
	heartbeat(t, st, "n2")
	startControllers(t, st, schedTestOptions())
	onN1 := func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{corev1.LabelHostname: "n1"} }
	createObj(t, st, pendingPod("before", onN1))
	waitBound(t, st, "before")

	createObj(t, st, nodePolicy("maintenance", onNodes("n1"), cordons))
	waitNode(t, st, "n1", `labels map[kubernetes.io/hostname:n1] taints [] unschedulable true record {"unschedulable":true}`)
	waitReady(t, st, "maintenance", []string{"n1"}, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied)
	createObj(t, st, pendingPod("after", onN1))
	createObj(t, st, pendingPod("anywhere"))
	want := "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable."
	eventually(t, "pod for n1 pending", func() (bool, string) {
		p := getPod(t, st, "after")
		c := podScheduled(p)
		return p.Spec.NodeName == "" && c != nil && c.Status == corev1.ConditionFalse && c.Message == want, fmt.Sprintf("node %q, %+v", p.Spec.NodeName, c)
	})
	if got := waitBound(t, st, "anywhere").Spec.NodeName; got != "n2" {
		t.Errorf("new pod bound to %s, want n2: n1 is cordoned", got)
	}
	if p := getPod(t, st, "before"); p.Spec.NodeName != "n1" || p.DeletionTimestamp != nil {
		t.Errorf("the pod already on n1 was moved: node %q, deleting %v", p.Spec.NodeName, p.DeletionTimestamp != nil)
	}

	deletePolicy(t, st, "maintenance")
	waitNode(t, st, "n1", `labels map[kubernetes.io/hostname:n1] taints [] unschedulable false record `)
	if got := waitBound(t, st, "after").Spec.NodeName; got != "n1" {
		t.Errorf("pod bound to %s, want n1", got)
	}
}

// TestNodePolicyComposesWithNodeLifecycle: the node lifecycle controller's
// unreachable taint and the node's own labels survive a policy coming and
// going on the same node, both controllers writing it by compare-and-swap.
func TestNodePolicyComposesWithNodeLifecycle(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("live"))
	createObj(t, st, testNode("dead"))
	heartbeat(t, st, "live")
	opts := schedTestOptions()
	opts.NodeLifecycle = NodeLifecycleOptions{GracePeriod: time.Second}
	startControllers(t, st, opts)
	createObj(t, st, nodePolicy("all", onSelector(), setsLabel("maint", "yes"), setsTaint("maint", "yes", corev1.TaintEffectNoSchedule), cordons))

	const policySet = `maint:yes] taints [%smaint=yes:NoSchedule] unschedulable true record {"labels":["maint"],"taints":["maint:NoSchedule"],"unschedulable":true}`
	eventually(t, "dead node unreachable and under the policy", func() (bool, string) {
		got := describeNode(getNode(t, st, "dead"))
		want1 := "labels map[kubernetes.io/hostname:dead " + fmt.Sprintf(policySet, "node.kubernetes.io/unreachable=:NoExecute ")
		want2 := "labels map[kubernetes.io/hostname:dead " + strings.Replace(fmt.Sprintf(policySet, ""), "NoSchedule]", "NoSchedule node.kubernetes.io/unreachable=:NoExecute]", 1)
		return got == want1 || got == want2, got
	})
	waitNode(t, st, "live", "labels map[kubernetes.io/hostname:live "+fmt.Sprintf(policySet, ""))
	waitReady(t, st, "all", []string{"dead", "live"}, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied)

	deletePolicy(t, st, "all")
	waitNode(t, st, "dead", `labels map[kubernetes.io/hostname:dead] taints [node.kubernetes.io/unreachable=:NoExecute] unschedulable false record `)
	waitNode(t, st, "live", `labels map[kubernetes.io/hostname:live] taints [] unschedulable false record `)
}

// TestNodePolicyConflict: two policies set one label to different values on
// a node: the first by name applies and both say so in Ready=False, reason
// Conflict; a policy cannot change a label the node has of its own. Once
// they agree, both are Ready.
func TestNodePolicyConflict(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("n", func(n *corev1.Node) { n.Labels["rack"] = "r1" }))
	startControllers(t, st, testOptions())
	createObj(t, st, nodePolicy("b-west", onNodes("n"), setsLabel("zone", "west")))
	createObj(t, st, nodePolicy("a-east", onSelector("rack", "r1"), setsLabel("zone", "east")))
	createObj(t, st, nodePolicy("c-rack", onNodes("n"), setsLabel("rack", "r2")))

	waitNode(t, st, "n", `labels map[kubernetes.io/hostname:n rack:r1 zone:east] taints [] unschedulable false record {"labels":["zone"]}`)
	want := `node n: label zone: policy a-east sets "east", policy b-west sets "west"; a-east applies, as the first by name`
	for _, p := range []string{"a-east", "b-west"} {
		if msg := waitReady(t, st, p, []string{"n"}, metav1.ConditionFalse, keelsonv1alpha1.ReasonConflict); msg != want {
			t.Errorf("policy %s: message %q, want %q", p, msg, want)
		}
	}
	msg := waitReady(t, st, "c-rack", []string{"n"}, metav1.ConditionFalse, keelsonv1alpha1.ReasonConflict)
	if want := `node n: label rack is the node's own ("r1"); policy c-rack sets "r2", which is not applied there`; msg != want {
		t.Errorf("policy c-rack: message %q, want %q", msg, want)
	}

	changePolicy(t, st, "b-west", func(s *keelsonv1alpha1.NodePolicySpec) { s.Labels["zone"] = "east" })
	waitReady(t, st, "a-east", []string{"n"}, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied)
	waitReady(t, st, "b-west", []string{"n"}, metav1.ConditionTrue, keelsonv1alpha1.ReasonApplied)
	deletePolicy(t, st, "a-east")
	deletePolicy(t, st, "b-west")
	waitNode(t, st, "n", `labels map[kubernetes.io/hostname:n rack:r1] taints [] unschedulable false record `)
}
