package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/internal/netnstest"
)

// TestNodeProxyFailureIsANodeCondition: when nftables cannot be used (here
// the namespace the proxy is told to program is no namespace), the node says
// so in its NetworkUnavailable condition, the agent keeps running, and so
// do its pods; once the namespace exists, the condition clears.
func TestNodeProxyFailureIsANodeCondition(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-netns")
	n := startNode(t, "node-1", "10.99.11.0/24", func(c *agent.Config) {
		c.ServiceProxy, c.ProxyTable, c.NetNS = true, fmt.Sprintf("kf%d", os.Getpid()%100000), missing
	})
	ctx := t.Context()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{
			Name: "web", Image: ociarchive.BusyboxRef, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"httpd", "-f", "-p", "8080"},
		}}},
	}
	if err := n.store.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	networkCondition := func() (corev1.NodeCondition, bool) {
		var node corev1.Node
		if err := n.store.Get(ctx, "", "node-1", &node); err != nil {
			return corev1.NodeCondition{}, false
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeNetworkUnavailable {
				return c, true
			}
		}
		return corev1.NodeCondition{}, false
	}
	eventually(t, "NetworkUnavailable=True, reason NodeProxyFailed, and the pod Running", func() string {
		c, ok := networkCondition()
		var p corev1.Pod
		if err := n.store.Get(ctx, "default", "web", &p); err != nil {
			return err.Error()
		}
		if !ok || c.Status != corev1.ConditionTrue || c.Reason != "NodeProxyFailed" || p.Status.Phase != corev1.PodRunning {
			return fmt.Sprintf("condition %+v, pod %s", c, p.Status.Phase)
		}
		return ""
	})

	// The namespace appears (nftables usable again): the proxy retries,
	// succeeds, and the condition clears.
	ns := netnstest.New(t, "node")
	if err := os.Symlink(ns.Path, missing); err != nil {
		t.Fatal(err)
	}
	eventually(t, "NetworkUnavailable=False once nftables works", func() string {
		c, ok := networkCondition()
		if !ok || c.Status != corev1.ConditionFalse || c.Reason != "KeelsonNetworkReady" {
			return fmt.Sprintf("condition %+v", c)
		}
		return ""
	})
}
