package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/test/cluster"
)

// hollowApp is deployments Deployments of replicas pods each, in namespace
// scale.
func hollowApp(deployments, replicas int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Namespace\nmetadata: {name: scale}\n")
	for i := range deployments {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%d, namespace: scale}
spec:
  replicas: %d
  selector: {matchLabels: {app: app-%d}}
  template:
    metadata: {labels: {app: app-%d}}
    spec:
      containers:
      - name: app
        image: localhost/busybox:latest
        resources: {requests: {cpu: 10m, memory: 16Mi}}
`, i, replicas, i, i)
	}
	return b.String()
}

// podCounts counts the pods of namespace scale: bound to a node, Running,
// and on how many distinct nodes.
func podCounts(t testing.TB, c kubernetes.Interface) (total, bound, running, nodes int, err error) {
	pods, err := c.CoreV1().Pods("scale").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	seen := map[string]bool{}
	for _, p := range pods.Items {
		total++
		if p.Spec.NodeName != "" {
			bound++
			seen[p.Spec.NodeName] = true
		}
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	return total, bound, running, len(seen), nil
}

// TestHollowNodes runs 50 simulated nodes (keelson agent --runtime
// simulated) against a server on an etcd cluster member: they register and
// stay Ready on their leases, the scheduler spreads 200 pods over them,
// they report them Running, and they let go of the pods a smaller revision
// deletes. The revisions (201 objects, then 180 deleted) are more than
// one transaction of etcd's default --max-txn-ops (128), with the leader's
// fence in each.
func TestHollowNodes(t *testing.T) {
	r := newRepo(t)
	first := r.commit(t, "deploy/app.yaml", hollowApp(200, 1), "200 pods")
	cl := cluster.New(t, cluster.Config{Hosts: 1, Etcd: 1, Servers: 1, Hollow: 50,
		Binary: binary, Repo: r.dir, Path: "deploy",
		// Short leases: a node whose renewals stopped would show within
		// the test.
		ServerArgs: []string{"--node-monitor-grace-period", "15s"}})
	c := cl.Client(t, cl.Hosts[0])
	waitApplied(t, cl, first, time.Minute)
	// Spread: the scheduler prefers the emptier nodes, so the pods land on
	// most of them (not on exactly every one: scores tie).
	cluster.Eventually(t, 2*time.Minute, "200 pods Running, spread over the simulated nodes", func() (string, bool) {
		total, bound, running, nodes, err := podCounts(t, c)
		if err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("%d pods, %d bound, %d Running, on %d nodes", total, bound, running, nodes), running == 200 && nodes > 40
	})
	// Leases keep them Ready past the grace period.
	time.Sleep(20 * time.Second)
	nodes, err := c.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: "keelson.dev/hollow=true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 50 {
		t.Fatalf("%d simulated nodes, want 50", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
				t.Errorf("node %s: Ready %s (%s) past the grace period: its lease is not renewed", n.Name, cond.Status, cond.Reason)
			}
		}
	}
	rev := r.commit(t, "deploy/app.yaml", hollowApp(20, 1), "20 pods")
	waitApplied(t, cl, rev, time.Minute)
	cluster.Eventually(t, 2*time.Minute, "20 pods left, Running", func() (string, bool) {
		total, _, running, _, err := podCounts(t, c)
		if err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("%d pods, %d Running", total, running), total == 20 && running == 20
	})
}
