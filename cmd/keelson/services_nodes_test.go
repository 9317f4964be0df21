package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/agent/route"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestServicesAcrossNodes runs a second node agent in a network namespace
// of its own on this machine, joined to the first by a veth link as two
// hosts on one L2 segment: each agent routes the other's pod CIDR to it, so
// a pod on node-2 reaches the service whose pods run on node-1, by its DNS
// name, through node-2's proxy and the cluster DNS of the control plane on
// node-1's host. Both agents' routes and tables are removed at the end.
func TestServicesAcrossNodes(t *testing.T) {
	containerdtest.Require(t)
	dir, err := os.MkdirTemp("", "kn2-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	archive := busyboxArchive(t, dir)

	// The second host: a network namespace, its end of a veth link; the
	// first host is this machine's namespace, with the other end.
	id := os.Getpid() % 100000
	subnet := fmt.Sprintf("172.31.%d", 1+os.Getpid()%250)
	node1IP, node2IP := subnet+".1", subnet+".2"
	ns := fmt.Sprintf("kn2-%d", id)
	hostEnd, nodeEnd := fmt.Sprintf("kv%da", id), fmt.Sprintf("kv%db", id)
	ip(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip(t, "link", "add", hostEnd, "type", "veth", "peer", "name", nodeEnd)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostEnd).Run() })
	ip(t, "link", "set", nodeEnd, "netns", ns)
	ip(t, "addr", "add", node1IP+"/24", "dev", hostEnd)
	ip(t, "link", "set", hostEnd, "up")
	ip(t, "-n", ns, "addr", "add", node2IP+"/24", "dev", nodeEnd)
	ip(t, "-n", ns, "link", "set", nodeEnd, "up")
	ip(t, "-n", ns, "link", "set", "lo", "up")
	netnsPath := "/run/netns/" + ns

	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(tokens, []byte("admin-token,admin,uid-admin,\"system:masters\"\n"+
		"node1-token,system:node:node-1,uid-1,\"system:nodes\"\nnode2-token,system:node:node-2,uid-2,\"system:nodes\"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "node-1.token"), []byte("node1-token\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "node-2.token"), []byte("node2-token\n"), 0o600)
	data := filepath.Join(dir, "server")
	repo := filepath.Join(dir, "repo")
	gitRun(t, "", "init", "-q", "-b", "main", repo)
	commit(t, repo, "README", "the cluster\n", "start")
	port := strings.Split(freeAddr(t), ":")[1]
	api := node1IP + ":" + port
	server := start(t, "server", "--data-dir", data, "--listen", "0.0.0.0:"+port, "--tls-san", node1IP,
		"--token-auth-file", tokens, "--advertise-address", node1IP,
		"--cluster-cidr", fmt.Sprintf("10.%d.0.0/16", 100+os.Getpid()%100),
		"--repo", repo, "--path", "deploy", "--sync-interval", "1s",
		"--etcd-listen-client", etcdtest.FreeURL(t), "--etcd-listen-peer", etcdtest.FreeURL(t))
	waitHTTPS(t, server, "https://"+api+"/readyz")

	// Both agents leave routes in their namespaces; the second's go with
	// it, the first's here.
	t.Cleanup(func() {
		if err := route.Cleanup(""); err != nil {
			t.Errorf("remove the routes to node-2's pods: %v", err)
		}
	})
	agent := func(node, hostIP string) []string {
		d := containerdtest.StartDaemon(t)
		if out, err := exec.Command(binary, "image", "import", "--containerd-socket", d.Socket, archive).CombinedOutput(); err != nil {
			t.Fatalf("image import: %v\n%s", err, out)
		}
		agentDir := filepath.Join(dir, node)
		t.Cleanup(func() { cleanNode(t, d.Socket, agentDir) })
		return []string{"agent", "--server", "https://" + api, "--ca-file", filepath.Join(data, "tls", "ca.crt"),
			"--token-file", filepath.Join(dir, node+".token"), "--node-name", node, "--host-ip", hostIP,
			"--containerd-socket", d.Socket, "--data-dir", agentDir, "--cni-bridge", fmt.Sprintf("kb%d%s", id, node[len(node)-1:]),
			"--listen", hostIP + ":" + strings.Split(freeAddr(t), ":")[1]}
	}
	bridge1 := fmt.Sprintf("kb%d1", id)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge1).Run() })
	agent1 := start(t, agent("node-1", node1IP)...)
	agent2 := startInNetNS(t, netnsPath, agent("node-2", node2IP)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server:\n%s\nagent node-1:\n%s\nagent node-2:\n%s", server.out, agent1.out, agent2.out)
		}
	})
	c := adminClient(t, data, api)

	// The backends on node-1, the client on node-2: the client reaches them
	// only through the route to node-1's pod CIDR, and asks node-2's own
	// proxy and cluster DNS on the control plane's host.
	commit(t, repo, "deploy/svc.yaml", namespaceYAML+"---\n"+backendYAML("", 31000+os.Getpid()%1500, "node-1"), "backends on node-1")
	eventuallyOut(t, "the backend service's cluster IP", func() (string, bool) {
		s, err := c.CoreV1().Services("svc").Get(t.Context(), "backend", metav1.GetOptions{})
		return fmt.Sprint(s, err), err == nil && s.Spec.ClusterIP != ""
	})
	commit(t, repo, "deploy/client.yaml", clientYAML("node-2"), "a client on node-2")
	eventuallyOut(t, "the client on node-2 answered by all three backends on node-1", func() (string, bool) {
		dnsSeen, envSeen, logs := whoAnswered(t, c, 0)
		return logs, len(dnsSeen) == 3 && len(envSeen) == 3
	})
	pods, err := c.CoreV1().Pods("svc").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		want := "node-1"
		if p.Name == "client" {
			want = "node-2"
		}
		if p.Spec.NodeName != want {
			t.Errorf("pod %s on %q, want %s", p.Name, p.Spec.NodeName, want)
		}
	}
	for _, n := range []string{"node-1", "node-2"} {
		node, err := c.CoreV1().Nodes().Get(t.Context(), n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == "NetworkUnavailable" && cond.Status != "False" {
				t.Errorf("node %s: NetworkUnavailable %s %s: %s", n, cond.Status, cond.Reason, cond.Message)
			}
		}
	}
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// startInNetNS starts keelson in another network namespace (and only that:
// the mounts it makes for pods are this machine's, which containerd sees).
func startInNetNS(t testing.TB, netns string, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command("nsenter", append([]string{"--net=" + netns, binary}, isolate(t, args)...)...))
}

// adminClient is a client-go client of the server's API with the admin token.
func adminClient(t testing.TB, data, api string) kubernetes.Interface {
	t.Helper()
	out, err := exec.Command(binary, "kubeconfig", "--server", "https://"+api, "--token", "admin-token", "--data-dir", data).Output()
	if err != nil {
		t.Fatalf("keelson kubeconfig: %v", err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
