package reconciler

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// heartbeat renews a node's lease, as its agent would, until the returned
// stop is called.
func heartbeat(t *testing.T, st *store.Store, node string) (stop func()) {
	t.Helper()
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: nodeLeaseNamespace, Name: node},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), LeaseDurationSeconds: ptr.To(int32(1))},
	}
	renew := func(ctx context.Context) {
		cur := &coordinationv1.Lease{}
		if err := st.Get(ctx, nodeLeaseNamespace, node, cur); err != nil {
			l := lease.DeepCopy()
			l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
			_ = st.Create(ctx, l)
			return
		}
		cur.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		_ = st.Update(ctx, cur)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	renew(ctx)
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
				renew(ctx)
			}
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func getNode(t *testing.T, st *store.Store, name string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{}
	if err := st.Get(t.Context(), "", name, n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNodeDeathEvictsAndReschedules: a node that stops heartbeating goes
// Ready=Unknown and is tainted; its pods leave after their toleration and
// their ReplicaSet's replacements land on the live node; when the node is
// back it is untainted.
func TestNodeDeathEvictsAndReschedules(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("alive"))
	createObj(t, st, testNode("dying"))
	heartbeat(t, st, "alive")
	stopDying := heartbeat(t, st, "dying")
	opts := schedTestOptions()
	opts.NodeLifecycle = NodeLifecycleOptions{GracePeriod: 2 * time.Second, TolerationSeconds: 1}
	startControllers(t, st, opts)

	rs := newRS("web", 4)
	createObj(t, st, rs)
	onNode := func(node string) int {
		n := 0
		for _, p := range listPods(t, st, "default", labels.Everything()) {
			if p.Spec.NodeName == node && p.DeletionTimestamp == nil {
				n++
			}
		}
		return n
	}
	eventually(t, "replicas on both nodes", func() (bool, string) {
		a, d := onNode("alive"), onNode("dying")
		return a+d == 4 && d > 0, fmt.Sprintf("alive %d, dying %d", a, d)
	})
	for _, n := range []string{"alive", "dying"} {
		if cidr := getNode(t, st, n).Spec.PodCIDR; cidr == "" {
			t.Errorf("node %s has no pod CIDR", n)
		}
	}

	stopDying()
	eventually(t, "dying node unknown and tainted", func() (bool, string) {
		n := getNode(t, st, "dying")
		return nodeReadyStatus(n) == corev1.ConditionUnknown && hasTaint(n, unreachableTaint),
			fmt.Sprintf("ready %s, taints %v", nodeReadyStatus(n), n.Spec.Taints)
	})
	if n := getNode(t, st, "alive"); nodeReadyStatus(n) != corev1.ConditionTrue || hasTaint(n, unreachableTaint) {
		t.Fatalf("the live node was touched: ready %s, taints %v", nodeReadyStatus(n), n.Spec.Taints)
	}
	eventually(t, "replicas moved to the live node", func() (bool, string) {
		a, d := onNode("alive"), onNode("dying")
		return a == 4 && d == 0, fmt.Sprintf("alive %d, dying %d", a, d)
	})

	// The agent is back: it renews its lease and posts Ready.
	heartbeat(t, st, "dying")
	n := getNode(t, st, "dying")
	n.Status.Conditions = testNode("dying").Status.Conditions
	if err := st.UpdateStatus(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node untainted", func() (bool, string) {
		n := getNode(t, st, "dying")
		return !hasTaint(n, unreachableTaint), fmt.Sprintf("taints %v", n.Spec.Taints)
	})
}

// TestEvictionHonoursTolerations: a pod tolerating unreachable forever stays;
// one tolerating it for an hour stays for now.
func TestEvictionHonoursTolerations(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("alive"))
	createObj(t, st, testNode("gone"))
	heartbeat(t, st, "alive")
	tolerate := func(secs *int64) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.NodeName = "gone"
			p.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}}
		}
	}
	createObj(t, st, pendingPod("forever", tolerate(nil)))
	createObj(t, st, pendingPod("hour", tolerate(ptr.To(int64(3600)))))
	createObj(t, st, pendingPod("default-toleration", func(p *corev1.Pod) { p.Spec.NodeName = "gone" }))
	opts := schedTestOptions()
	opts.NodeLifecycle = NodeLifecycleOptions{GracePeriod: time.Second, TolerationSeconds: 1}
	startControllers(t, st, opts)
	eventually(t, "pod without toleration marked for deletion", func() (bool, string) {
		p := getPod(t, st, "default-toleration")
		return p.DeletionTimestamp != nil, fmt.Sprint(p.DeletionTimestamp)
	})
	for _, name := range []string{"forever", "hour"} {
		if p := getPod(t, st, name); p.DeletionTimestamp != nil { // getPod fails the test when gone
			t.Errorf("pod %s marked for deletion", name)
		}
	}
	// Marked, not deleted: the node may still run it, and only its agent
	// (or the node's deletion) says it stopped. The garbage collector,
	// which removes marked objects, leaves it.
	time.Sleep(time.Second)
	getPod(t, st, "default-toleration")
	if err := st.Delete(t.Context(), store.MustResource("nodes"), "", "gone", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pod deleted with its node", func() (bool, string) {
		err := st.Get(t.Context(), "default", "default-toleration", &corev1.Pod{})
		return err != nil, fmt.Sprint(err)
	})
}

// TestEvictionIsRateLimited: with a budget of one eviction, one pod of the
// dead node goes and the others wait for the next token.
func TestEvictionIsRateLimited(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("alive"))
	createObj(t, st, testNode("gone"))
	heartbeat(t, st, "alive")
	for i := range 3 {
		createObj(t, st, pendingPod(fmt.Sprintf("p%d", i), func(p *corev1.Pod) { p.Spec.NodeName = "gone" }))
	}
	opts := schedTestOptions()
	opts.NodeLifecycle = NodeLifecycleOptions{GracePeriod: time.Second, TolerationSeconds: 1, EvictionQPS: 0.001, EvictionBurst: 1}
	startControllers(t, st, opts)
	left := func() int {
		n := 0
		for _, p := range listPods(t, st, "default", labels.Everything()) {
			if p.DeletionTimestamp == nil {
				n++
			}
		}
		return n
	}
	eventually(t, "one pod evicted", func() (bool, string) { return left() == 2, fmt.Sprint(left(), " pods left") })
	time.Sleep(500 * time.Millisecond)
	if n := left(); n != 2 {
		t.Errorf("%d pods left, want 2: the eviction budget was one", n)
	}
}

// TestDeletedNodeLosesItsPods: a grace period after a Node is deleted, the
// pods still bound to it are deleted and their ReplicaSet's replacements
// land on the remaining node.
func TestDeletedNodeLosesItsPods(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("stays"))
	createObj(t, st, testNode("removed", func(n *corev1.Node) {
		n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("64") // attracts the pods
	}))
	heartbeat(t, st, "stays")
	heartbeat(t, st, "removed")
	opts := schedTestOptions()
	opts.NodeLifecycle = NodeLifecycleOptions{GracePeriod: time.Second}
	startControllers(t, st, opts)
	createObj(t, st, newRS("web", 2))
	count := func() map[string]int {
		m := map[string]int{}
		for _, p := range listPods(t, st, "default", labels.Everything()) {
			m[p.Spec.NodeName]++
		}
		return m
	}
	eventually(t, "a replica on the node to remove", func() (bool, string) { m := count(); return m["removed"] > 0 && m[""] == 0, fmt.Sprint(m) })
	if err := st.Delete(t.Context(), store.MustResource("nodes"), "", "removed", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replicas all on the remaining node", func() (bool, string) { m := count(); return m["stays"] == 2 && len(m) == 1, fmt.Sprint(m) })
}
