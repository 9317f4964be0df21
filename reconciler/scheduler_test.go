package reconciler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// schedTestOptions run the scheduler with quick retries; nodes of these
// tests never heartbeat, so the grace period stays long.
func schedTestOptions() Options {
	o := testOptions()
	o.Scheduler = SchedulerOptions{RetryDelay: 50 * time.Millisecond}
	o.NodeLifecycle = NodeLifecycleOptions{}
	return o
}

func createObj(t *testing.T, st *store.Store, obj store.Object) {
	t.Helper()
	if err := st.Create(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
}

// pendingPod is an unscheduled pod as a controller or Git would create it.
func pendingPod(name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := testPod(name, mutate...)
	p.UID = ""
	return p
}

func getPod(t *testing.T, st *store.Store, name string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{}
	if err := st.Get(t.Context(), "default", name, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func podScheduled(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func waitBound(t *testing.T, st *store.Store, name string) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	eventually(t, "pod "+name+" bound", func() (bool, string) {
		p = getPod(t, st, name)
		return p.Spec.NodeName != "", fmt.Sprintf("conditions %+v", p.Status.Conditions)
	})
	return p
}

func TestSchedulerExplainsUnschedulableAndRetries(t *testing.T) {
	st := etcdtest.NewStore(t)
	for i := range 5 {
		n := testNode(fmt.Sprintf("node-%d", i))
		if i >= 3 {
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		}
		createObj(t, st, n)
	}
	startControllers(t, st, schedTestOptions())
	createObj(t, st, pendingPod("big", requests("6", "")))
	want := "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: db}."
	eventually(t, "pod marked unschedulable", func() (bool, string) {
		c := podScheduled(getPod(t, st, "big"))
		if c == nil {
			return false, "no PodScheduled condition"
		}
		return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == want, c.Message
	})
	eventually(t, "FailedScheduling event", func() (bool, string) {
		l, err := st.List(t.Context(), store.MustResource("events"), store.ListOptions{Namespace: "default"})
		if err != nil {
			return false, err.Error()
		}
		for _, o := range l.Items {
			ev := o.(*corev1.Event)
			if ev.InvolvedObject.Name == "big" && ev.Reason == "FailedScheduling" && ev.Message == want {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(l.Items))
	})
	// A node with room appears: the waiting pod is tried again.
	createObj(t, st, testNode("large", func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("16") }))
	p := waitBound(t, st, "big")
	if p.Spec.NodeName != "large" {
		t.Errorf("pod bound to %s, want large", p.Spec.NodeName)
	}
	if c := podScheduled(p); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("PodScheduled = %+v, want True", c)
	}
}

func TestSchedulerTaintsSelectorsAndNames(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("db", func(n *corev1.Node) {
		n.Labels["role"] = "db"
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
	}))
	createObj(t, st, testNode("web", func(n *corev1.Node) { n.Labels["role"] = "web" }))
	createObj(t, st, testNode("cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true }))
	startControllers(t, st, schedTestOptions())

	createObj(t, st, pendingPod("postgres", func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{"role": "db"}
		p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db", Effect: corev1.TaintEffectNoSchedule}}
	}))
	for i := range 4 {
		createObj(t, st, pendingPod(fmt.Sprintf("web-%d", i)))
	}
	createObj(t, st, pendingPod("custom", func(p *corev1.Pod) { p.Spec.SchedulerName = "my-scheduler" }))
	createObj(t, st, pendingPod("keelson-named", func(p *corev1.Pod) { p.Spec.SchedulerName = "keelson" }))

	if got := waitBound(t, st, "postgres").Spec.NodeName; got != "db" {
		t.Errorf("postgres on %s, want db", got)
	}
	for i := range 4 {
		if got := waitBound(t, st, fmt.Sprintf("web-%d", i)).Spec.NodeName; got != "web" {
			t.Errorf("web-%d on %s, want web (db is tainted, cordoned is cordoned)", i, got)
		}
	}
	waitBound(t, st, "keelson-named")
	// Everything the scheduler had to do is done; the other scheduler's pod
	// must still be waiting for it.
	if p := getPod(t, st, "custom"); p.Spec.NodeName != "" || len(p.Status.Conditions) != 0 {
		t.Errorf("pod for my-scheduler was touched: node %q, conditions %+v", p.Spec.NodeName, p.Status.Conditions)
	}
}

func TestSchedulerSpreadsReplicasAcrossZones(t *testing.T) {
	st := etcdtest.NewStore(t)
	for i := range 6 {
		createObj(t, st, testNode(fmt.Sprintf("node-%d", i), func(n *corev1.Node) {
			n.Labels[zoneLabel] = fmt.Sprintf("zone-%d", i%3)
		}))
	}
	startControllers(t, st, schedTestOptions())
	rs := newRS("web", 6)
	createObj(t, st, rs)
	eventually(t, "6 replicas bound", func() (bool, string) {
		bound := 0
		for _, p := range listPods(t, st, "default", labels.Everything()) {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		return bound == 6, fmt.Sprintf("%d bound", bound)
	})
	perNode := map[string]int{}
	for _, p := range listPods(t, st, "default", labels.Everything()) {
		perNode[p.Spec.NodeName]++
	}
	zones := map[string]int{}
	for n, c := range perNode {
		var i int
		fmt.Sscanf(n, "node-%d", &i)
		zones[fmt.Sprintf("zone-%d", i%3)] += c
		if c != 1 {
			t.Errorf("node %s holds %d replicas, want 1: %v", n, c, perNode)
		}
	}
	for z, c := range zones {
		if c != 2 {
			t.Errorf("zone %s holds %d replicas, want 2: %v", z, c, zones)
		}
	}
}

func TestSchedulerPodAntiAffinity(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("a"))
	createObj(t, st, testNode("b"))
	startControllers(t, st, schedTestOptions())
	rs := newRS("web", 3)
	rs.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term("app", "web", corev1.LabelHostname)},
	}}
	createObj(t, st, rs)
	want := "0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules."
	eventually(t, "two replicas bound, one explained", func() (bool, string) {
		nodes, msgs := map[string]bool{}, []string{}
		for _, p := range listPods(t, st, "default", labels.Everything()) {
			if p.Spec.NodeName != "" {
				nodes[p.Spec.NodeName] = true
			} else if c := podScheduled(p); c != nil && c.Status == corev1.ConditionFalse {
				msgs = append(msgs, c.Message)
			}
		}
		return len(nodes) == 2 && len(msgs) == 1 && msgs[0] == want, fmt.Sprintf("nodes %v, messages %q", nodes, msgs)
	})
	// A third node lets the last replica in.
	createObj(t, st, testNode("c"))
	eventually(t, "third replica on the new node", func() (bool, string) {
		nodes := map[string]int{}
		for _, p := range listPods(t, st, "default", labels.Everything()) {
			nodes[p.Spec.NodeName]++
		}
		return nodes["a"] == 1 && nodes["b"] == 1 && nodes["c"] == 1, fmt.Sprint(nodes)
	})
}

func TestSchedulerTopologySpread(t *testing.T) {
	st := etcdtest.NewStore(t)
	// Zone z1's nodes are four times larger: by free resources alone every
	// pod would go there.
	for i, zone := range []string{"z1", "z1", "z1", "z2"} {
		createObj(t, st, testNode(fmt.Sprintf("node-%d", i), func(n *corev1.Node) {
			n.Labels[zoneLabel] = zone
			if zone == "z1" {
				n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("16")
			}
		}))
	}
	startControllers(t, st, schedTestOptions())
	for i := range 4 {
		createObj(t, st, pendingPod(fmt.Sprintf("web-%d", i), labeled("app", "web"), requests("1", ""), spreadBy(zoneLabel, 1)))
	}
	eventually(t, "pods spread 2/2 over the zones", func() (bool, string) {
		zones := map[string]int{}
		for _, p := range listPods(t, st, "default", labels.Everything()) {
			if p.Spec.NodeName == "node-3" {
				zones["z2"]++
			} else if p.Spec.NodeName != "" {
				zones["z1"]++
			}
		}
		return zones["z1"] == 2 && zones["z2"] == 2, fmt.Sprint(zones)
	})
}

// TestSchedulerUnschedulableIsNotAHotLoop: a pod that fits nowhere is tried
// again when a node changes, not when unrelated pods change.
func TestSchedulerUnschedulableIsNotAHotLoop(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("a"))
	startControllers(t, st, schedTestOptions())
	createObj(t, st, pendingPod("small"))
	createObj(t, st, pendingPod("big", requests("6", "")))
	eventually(t, "big unschedulable", func() (bool, string) {
		c := podScheduled(getPod(t, st, "big"))
		return c != nil && c.Reason == corev1.PodReasonUnschedulable, fmt.Sprintf("%+v", c)
	})
	failures := func() int32 {
		l, err := st.List(t.Context(), store.MustResource("events"), store.ListOptions{Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		var n int32
		for _, o := range l.Items {
			if ev := o.(*corev1.Event); ev.InvolvedObject.Name == "big" && ev.Reason == "FailedScheduling" {
				n += ev.Count
			}
		}
		return n
	}
	eventually(t, "FailedScheduling recorded", func() (bool, string) { return failures() > 0, "" })
	before := failures()
	small := waitBound(t, st, "small")
	for i := range 20 { // an agent posting status of another pod
		small.Status.Message = fmt.Sprint(i)
		if err := st.UpdateStatus(t.Context(), small); err != nil {
			t.Fatal(err)
		}
	}
	// Long enough for many retry delays (50ms) to pass.
	time.Sleep(500 * time.Millisecond)
	if after := failures(); after != before {
		t.Errorf("FailedScheduling count went from %d to %d while nothing relevant changed", before, after)
	}
	// A relevant change: the node grows.
	n := getNode(t, st, "a")
	n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("8")
	if err := st.UpdateStatus(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	waitBound(t, st, "big")
}

// A pod that mounts a claim waits, Pending and saying why, until the claim
// exists and is bound; then it is placed.
func TestSchedulerWaitsForClaims(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("node-a"))
	startControllers(t, st, schedTestOptions())
	createObj(t, st, pendingPod("db", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db"},
		}}}
	}))
	waitMessage := func(want string) {
		t.Helper()
		eventually(t, "pod unschedulable: "+want, func() (bool, string) {
			p := getPod(t, st, "db")
			c := podScheduled(p)
			if c == nil {
				return false, "no PodScheduled condition"
			}
			return p.Spec.NodeName == "" && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
				strings.HasPrefix(c.Message, want), c.Message
		})
	}
	waitMessage(`persistentvolumeclaim "data-db" not found`)
	createObj(t, st, testPVC("data-db", "1Gi"))
	waitMessage("pod has unbound immediate PersistentVolumeClaims: data-db")
	// A volume comes, the binder binds the claim, and the pod is placed.
	createObj(t, st, testPV("disk", "1Gi"))
	if p := waitBound(t, st, "db"); p.Spec.NodeName != "node-a" {
		t.Errorf("pod bound to %s, want node-a", p.Spec.NodeName)
	}
}

// A pod goes where its volumes are: to the node a local volume is on, and,
// for a ReadWriteOnce claim another pod uses, to that pod's node; a
// ReadWriteOncePod claim in use keeps it from every node.
func TestSchedulerFollowsVolumes(t *testing.T) {
	st := etcdtest.NewStore(t)
	for _, n := range []string{"node-a", "node-b", "node-c"} {
		createObj(t, st, testNode(n))
	}
	createObj(t, st, testPV("on-b", "1Gi", affinityTo("node-b")))
	createObj(t, st, testPV("shared", "1Gi"))
	createObj(t, st, testPV("solo", "1Gi", func(pv *corev1.PersistentVolume) {
		pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
	}))
	createObj(t, st, testPVC("local", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "on-b" }))
	createObj(t, st, testPVC("rwo", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "shared" }))
	createObj(t, st, testPVC("once", "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
	}))
	startControllers(t, st, schedTestOptions())
	mounting := func(claim string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
		}
	}
	for _, c := range []string{"local", "rwo", "once"} {
		eventually(t, "claim "+c+" bound", func() (bool, string) {
			p := getPVC(t, st, c).Status.Phase
			return p == corev1.ClaimBound, string(p)
		})
	}
	createObj(t, st, pendingPod("on-local", mounting("local")))
	if p := waitBound(t, st, "on-local"); p.Spec.NodeName != "node-b" {
		t.Errorf("pod of the local volume on %s, want node-b", p.Spec.NodeName)
	}
	createObj(t, st, pendingPod("first", mounting("rwo")))
	first := waitBound(t, st, "first").Spec.NodeName
	for i := range 3 {
		name := fmt.Sprintf("next-%d", i)
		createObj(t, st, pendingPod(name, mounting("rwo")))
		if p := waitBound(t, st, name); p.Spec.NodeName != first {
			t.Errorf("%s on %s, want %s with the claim's first pod", name, p.Spec.NodeName, first)
		}
	}
	createObj(t, st, pendingPod("solo-1", mounting("once")))
	waitBound(t, st, "solo-1")
	createObj(t, st, pendingPod("solo-2", mounting("once")))
	eventually(t, "the second pod of a ReadWriteOncePod claim unschedulable", func() (bool, string) {
		c := podScheduled(getPod(t, st, "solo-2"))
		return c != nil && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, `persistentvolumeclaim "once" is ReadWriteOncePod and pod solo-1 uses it`), fmt.Sprintf("%+v", c)
	})
}

// A claim of the local-path class (WaitForFirstConsumer) gets the node the
// scheduler chooses for its first pod, among those with room for it; the
// pod waits until the claim is bound there (here a volume stands in for
// the node agent's), then goes to that node. A claim too big for every
// node leaves its pod unschedulable, saying so.
func TestSchedulerChoosesNodeForLocalPath(t *testing.T) {
	st := etcdtest.NewStore(t)
	withCapacity := func(c string) func(*corev1.Node) {
		return func(n *corev1.Node) {
			n.Annotations = map[string]string{keelsonv1alpha1.AnnotationLocalPathCapacity: c}
		}
	}
	createObj(t, st, testNode("small", withCapacity("1Gi")))
	createObj(t, st, testNode("big", withCapacity("10Gi")))
	createObj(t, st, testNode("none"))
	startControllers(t, st, schedTestOptions())
	eventually(t, "the local-path class", func() (bool, string) {
		err := st.Get(t.Context(), "", keelsonv1alpha1.LocalPathClass, &storagev1.StorageClass{})
		return err == nil, fmt.Sprint(err)
	})
	noClass := func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = nil }
	createObj(t, st, testPVC("data", "5Gi", noClass))
	createObj(t, st, pendingPod("db", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	}))
	var claim *corev1.PersistentVolumeClaim
	eventually(t, "a node chosen for the claim", func() (bool, string) {
		claim = getPVC(t, st, "data")
		return claim.Annotations[annSelectedNode] != "", fmt.Sprint(claim.Annotations)
	})
	if n := claim.Annotations[annSelectedNode]; n != "big" {
		t.Fatalf("node %s chosen, want big, the one with room", n)
	}
	if p := getPod(t, st, "db"); p.Spec.NodeName != "" {
		t.Fatalf("pod bound to %s before its claim", p.Spec.NodeName)
	}
	createObj(t, st, testPV("pvc-"+string(claim.UID), "5Gi", affinityTo("big"), func(pv *corev1.PersistentVolume) {
		pv.Spec.StorageClassName = keelsonv1alpha1.LocalPathClass
		pv.Annotations = map[string]string{keelsonv1alpha1.AnnotationLocalPathNode: "big"}
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data", UID: claim.UID}
	}))
	if p := waitBound(t, st, "db"); p.Spec.NodeName != "big" {
		t.Errorf("pod on %s, want big, where its claim is", p.Spec.NodeName)
	}

	// big has given 5Gi of its 10Gi: a 6Gi claim fits nowhere.
	createObj(t, st, testPVC("huge", "6Gi", noClass))
	createObj(t, st, pendingPod("greedy", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "huge"}}}}
	}))
	eventually(t, "greedy unschedulable for want of storage", func() (bool, string) {
		c := podScheduled(getPod(t, st, "greedy"))
		return c != nil && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, "2 node(s) did not have enough free storage"), fmt.Sprintf("%+v", c)
	})
}

// The node chosen for a local-path claim goes before its volume is made:
// the choice is dropped and another node is chosen.
func TestSchedulerChoosesAgainWhenNodeGoes(t *testing.T) {
	st := etcdtest.NewStore(t)
	withCapacity := func(n *corev1.Node) {
		n.Annotations = map[string]string{keelsonv1alpha1.AnnotationLocalPathCapacity: "10Gi"}
	}
	createObj(t, st, testNode("first", withCapacity))
	startControllers(t, st, schedTestOptions())
	eventually(t, "the local-path class", func() (bool, string) {
		err := st.Get(t.Context(), "", keelsonv1alpha1.LocalPathClass, &storagev1.StorageClass{})
		return err == nil, fmt.Sprint(err)
	})
	createObj(t, st, testPVC("data", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = nil }))
	createObj(t, st, pendingPod("db", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	}))
	eventually(t, "first chosen", func() (bool, string) {
		a := getPVC(t, st, "data").Annotations[annSelectedNode]
		return a == "first", a
	})
	createObj(t, st, testNode("second", withCapacity))
	if err := st.Delete(t.Context(), store.MustResource("nodes"), "", "first", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second chosen", func() (bool, string) {
		a := getPVC(t, st, "data").Annotations[annSelectedNode]
		return a == "second", a
	})
}
