package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/reconciler"
	"github.com/keelson/keelson/schema"
)

// gitRepo is a repository in a temp dir, written with the git command.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.name", "Ops")
	r.git("config", "user.email", "ops@example.com")
	return r
}

func (r *gitRepo) git(args ...string) {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// commit writes files (empty content removes one) and commits them.
func (r *gitRepo) commit(msg string, files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		if content == "" {
			r.git("rm", "-q", name)
			continue
		}
		p := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		r.git("add", name)
	}
	r.git("commit", "-q", "-m", msg)
}

func sleeperManifest(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
`, name, ociarchive.BusyboxRef)
}

const maintenancePolicy = `apiVersion: keelson.dev/v1alpha1
kind: NodePolicy
metadata:
  name: maintenance
spec:
  nodeNames: [node-1]
  labels:
    example.com/maintenance: "true"
  taints:
  - {key: example.com/maintenance, value: "true", effect: PreferNoSchedule}
  unschedulable: true
`

// TestCordonFromGit: a NodePolicy committed to Git cordons a real node
// (agent, containerd): the pod already there keeps running, a new pod stays
// Pending as unschedulable, and the agent's heartbeats leave the cordon be.
// Removing the policy from Git uncordons the node, takes its label and taint
// back, keeps the agent's labels, and the waiting pod starts.
func TestCordonFromGit(t *testing.T) {
	n := startNode(t, "node-1", "10.99.12.0/24")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go reconciler.Run(ctx, n.store, quietLogger(), reconciler.Options{
		LeaderElection: reconciler.LeaderElection{Disabled: true},
		Scheduler:      reconciler.SchedulerOptions{RetryDelay: 100 * time.Millisecond},
	})
	sch, err := schema.Default()
	if err != nil {
		t.Fatal(err)
	}
	repo := newGitRepo(t)
	repo.commit("web", map[string]string{"apps/web.yaml": sleeperManifest("web")})
	loop, err := gitsync.New(gitsync.Config{Repo: repo.dir, Ref: "main", Interval: 200 * time.Millisecond, Prune: true},
		n.store, sch, schema.NewCache(100), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	go loop.Run(ctx)
	waitRunning(t, n, "web")

	repo.commit("cordon node-1 for maintenance", map[string]string{"nodes/maintenance.yaml": maintenancePolicy})
	loop.Trigger()
	eventually(t, "node-1 cordoned from Git", func() string {
		node := getNodeE2E(t, n)
		if !node.Spec.Unschedulable || node.Labels["example.com/maintenance"] != "true" || !hasTaintKey(node, "example.com/maintenance") {
			return fmt.Sprintf("unschedulable %v, labels %v, taints %v", node.Spec.Unschedulable, node.Labels, node.Spec.Taints)
		}
		return ""
	})
	repo.commit("late", map[string]string{"apps/late.yaml": sleeperManifest("late")})
	loop.Trigger()
	want := "0/1 nodes are available: 1 node(s) were unschedulable."
	eventually(t, "late pod pending", func() string {
		var p corev1.Pod
		if err := n.store.Get(t.Context(), "default", "late", &p); err != nil {
			return err.Error() // not synced yet
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == want && p.Spec.NodeName == "" {
				return ""
			}
		}
		return fmt.Sprintf("node %q, conditions %+v", p.Spec.NodeName, p.Status.Conditions)
	})
	// The agent heartbeats (renews its lease, reads its Node and posts its
	// status) twice more; the node stays cordoned and the old pod running.
	waitRenewals(t, n, 2)
	if node := getNodeE2E(t, n); !node.Spec.Unschedulable {
		t.Fatalf("the cordon did not last: %+v", node.Spec)
	}
	if p := getPodE2E(t, n, "web"); p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		t.Fatalf("web left a cordoned node: phase %s", p.Status.Phase)
	}

	repo.commit("maintenance done", map[string]string{"nodes/maintenance.yaml": ""})
	loop.Trigger()
	eventually(t, "node-1 uncordoned, policy's label and taint gone, agent's labels kept", func() string {
		node := getNodeE2E(t, n)
		_, labelled := node.Labels["example.com/maintenance"]
		if node.Spec.Unschedulable || labelled || hasTaintKey(node, "example.com/maintenance") ||
			node.Labels[corev1.LabelHostname] != "node-1" || node.Labels[corev1.LabelOSStable] == "" || node.Labels[corev1.LabelArchStable] == "" {
			return fmt.Sprintf("unschedulable %v, labels %v, taints %v", node.Spec.Unschedulable, node.Labels, node.Spec.Taints)
		}
		return ""
	})
	waitRunning(t, n, "late")
}

func getNodeE2E(t *testing.T, n *node) *corev1.Node {
	t.Helper()
	var node corev1.Node
	if err := n.store.Get(t.Context(), "", n.name, &node); err != nil {
		t.Fatal(err)
	}
	return &node
}

func getPodE2E(t *testing.T, n *node, name string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := n.store.Get(t.Context(), "default", name, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func hasTaintKey(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// waitRenewals waits until the node's lease has been renewed count times.
func waitRenewals(t *testing.T, n *node, count int) {
	t.Helper()
	var last time.Time
	seen := -1
	eventually(t, fmt.Sprintf("%d lease renewals", count), func() string {
		var l coordinationv1.Lease
		if err := n.store.Get(t.Context(), "kube-node-lease", n.name, &l); err != nil || l.Spec.RenewTime == nil {
			return fmt.Sprint("no lease renewal yet: ", err)
		}
		if !l.Spec.RenewTime.Time.Equal(last) {
			last, seen = l.Spec.RenewTime.Time, seen+1
		}
		if seen < count {
			return fmt.Sprintf("%d renewals seen", max(seen, 0))
		}
		return ""
	})
}
