package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

// TestNodeStatusTellsTheTruth: the node lists its images with their sizes
// (what the scheduler's image locality reads), a pod's story is in its
// events as the kubelet tells it, and Ready follows containerd: False
// with the reason while it is stopped, True once it is back.
func TestNodeStatusTellsTheTruth(t *testing.T) {
	n := startNode(t, "node-1", "10.99.17.0/24")
	ctx := t.Context()
	eventually(t, "the node's images", func() string {
		var node corev1.Node
		if err := n.store.Get(ctx, "", "node-1", &node); err != nil {
			return err.Error()
		}
		for _, img := range node.Status.Images {
			if slices.Contains(img.Names, ociarchive.BusyboxRef) {
				if img.SizeBytes <= 0 || !slices.ContainsFunc(img.Names, func(s string) bool { return strings.Contains(s, "busybox@sha256:") }) {
					return fmt.Sprintf("busybox listed as %+v: want its size and repository@digest", img)
				}
				return ""
			}
		}
		return fmt.Sprintf("images %+v", node.Status.Images)
	})
	if c := nodeCondition(getNodeE2E(t, n), corev1.NodeReady); c.Status != corev1.ConditionTrue || c.Reason != "KubeletReady" {
		t.Fatalf("Ready %+v", c)
	}
	if c := nodeCondition(getNodeE2E(t, n), corev1.NodePIDPressure); c.Status != corev1.ConditionFalse {
		t.Errorf("PIDPressure %+v on a machine with process IDs to spare", c)
	}

	if err := n.store.Create(ctx, sleeperPod("told")); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, n, "told")
	eventually(t, "the pod's events", func() string {
		evs, err := n.admin.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		var reasons []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "told" && e.Source.Component == "kubelet" && e.Source.Host == "node-1" {
				reasons = append(reasons, e.Reason)
			}
		}
		if !slices.Contains(reasons, "Created") || !slices.Contains(reasons, "Started") {
			return fmt.Sprintf("events of the pod: %v, want Created and Started from kubelet on node-1", reasons)
		}
		return ""
	})

	n.ctd.Stop()
	eventually(t, "Ready False while containerd is stopped", func() string {
		c := nodeCondition(getNodeE2E(t, n), corev1.NodeReady)
		if c.Status != corev1.ConditionFalse || c.Reason != "KubeletNotReady" || !strings.Contains(c.Message, "container runtime is down") {
			return fmt.Sprintf("Ready %+v", c)
		}
		return ""
	})
	n.ctd.Start(t)
	eventually(t, "Ready True once containerd is back", func() string {
		if c := nodeCondition(getNodeE2E(t, n), corev1.NodeReady); c.Status != corev1.ConditionTrue {
			return fmt.Sprintf("Ready %+v", c)
		}
		return ""
	})
	waitRunning(t, n, "told") // its container lived on with its shim
}

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.NodeCondition{}
}

// TestExitsWakeThePod: with a resync of an hour, a pod still follows its
// containers: containerd's exit event syncs it when its container exits,
// and the end of a crash back-off restarts it on time.
func TestExitsWakeThePod(t *testing.T) {
	n := startNode(t, "node-1", "10.99.18.0/24", func(c *agent.Config) { c.Resync = time.Hour })
	ctx := t.Context()
	once := sleeperPod("once")
	once.Spec.RestartPolicy = corev1.RestartPolicyNever
	once.Spec.Containers[0].Command = []string{"sh", "-c", "sleep 1; exit 3"}
	crashing := sleeperPod("crashing")
	crashing.Spec.Containers[0].Command = []string{"sh", "-c", "exit 1"}
	for _, p := range []*corev1.Pod{once, crashing} {
		if err := n.store.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the exited pod failed and the crashing one restarted", func() string {
		var a, b corev1.Pod
		if err := n.store.Get(ctx, "default", "once", &a); err != nil {
			return err.Error()
		}
		if err := n.store.Get(ctx, "default", "crashing", &b); err != nil {
			return err.Error()
		}
		restarts := int32(0)
		if len(b.Status.ContainerStatuses) > 0 {
			restarts = b.Status.ContainerStatuses[0].RestartCount
		}
		if a.Status.Phase != corev1.PodFailed || restarts < 3 {
			return fmt.Sprintf("once is %s, crashing restarted %d times", a.Status.Phase, restarts)
		}
		return ""
	})
}
