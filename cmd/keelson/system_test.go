package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keelson/keelson/agent/logs"
	"github.com/keelson/keelson/agent/network"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestServerAndAgentProcesses runs keelson as people run it: a server and an
// agent process, a private containerd, the busybox image imported with
// keelson image import, manifests committed to a Git repository the server
// syncs, then keelson get, logs and top; a second commit scales the
// Deployment. gitsync, the controllers, the scheduler and the agent carry each
// commit to running containers.
func TestServerAndAgentProcesses(t *testing.T) {
	c := startProcCluster(t)
	d, repo, keelson := c.containerd, c.repo, c.keelson
	eventuallyOut(t, "node registered", func() (string, bool) {
		out, err := keelson("get", "nodes")
		return out, err == nil && strings.Contains(out, "node-a") && strings.Contains(out, "Ready")
	})
	// The agent was given no pod CIDR: the control plane's node IPAM assigns one.
	eventuallyOut(t, "pod CIDR assigned", func() (string, bool) {
		out, err := keelson("get", "node", "node-a", "-o", "json")
		return out, err == nil && strings.Contains(out, `"podCIDR":"10.42.`) || strings.Contains(out, `"podCIDR": "10.42.`)
	})

	// Git is the only write path: a commit brings the pod and the Deployment.
	commit(t, repo, "deploy/apps.yaml", appsYAML(2), "hello and web")
	// The scheduler binds the pod and the Deployment's pods to the only node;
	// the controllers make the Deployment's ReplicaSet and pods.
	eventuallyOut(t, "the Deployment's pods running", func() (string, bool) {
		out, err := keelson("get", "pods", "-l", "app=web")
		return out, err == nil && strings.Count(out, "Running") == 2
	})
	eventuallyOut(t, "the Deployment available", func() (string, bool) {
		out, err := keelson("get", "deploy", "web")
		return out, err == nil && strings.Contains(out, "2/2")
	})
	eventuallyOut(t, "pod running", func() (string, bool) {
		out, err := keelson("get", "pods")
		return out, err == nil && strings.Contains(out, "hello") && strings.Contains(out, "Running")
	})
	eventuallyOut(t, "keelson logs", func() (string, bool) {
		out, err := keelson("logs", "hello", "--tail", "5")
		return out, err == nil && out == "hello from keelson\n"
	})
	// Each container logs through keelson-logger, found beside keelson.
	loggers := loggingBinaries(t)
	if len(loggers) < 3 {
		t.Errorf("%d logging processes for 3 running containers: %v", len(loggers), loggers)
	}
	for _, l := range loggers {
		if want := filepath.Join(filepath.Dir(binary), "keelson-logger"); l != want {
			t.Errorf("a container's logging binary is %s, want %s", l, want)
		}
	}
	eventuallyOut(t, "keelson top pods", func() (string, bool) {
		out, err := keelson("top", "pods")
		return out, err == nil && strings.Contains(out, "hello") && !strings.Contains(out, "\thello\t0m")
	})
	eventuallyOut(t, "keelson top nodes", func() (string, bool) {
		out, err := keelson("top", "nodes")
		return out, err == nil && strings.Contains(out, "node-a") && strings.Contains(out, "%")
	})

	// A reviewed change lands: the Deployment scales to 3.
	commit(t, repo, "deploy/apps.yaml", appsYAML(3), "web: 3 replicas")
	eventuallyOut(t, "scaled by a commit", func() (string, bool) {
		out, err := keelson("get", "pods", "-l", "app=web")
		return out, err == nil && strings.Count(out, "Running") == 3
	})

	// Only the agent restarts (an upgrade, a crash): every container keeps
	// running, none is restarted or replaced.
	before := containerIDs(t, d.Socket)
	if len(before) != 4 {
		t.Fatalf("%d containers for 4 pods: %v", len(before), before)
	}
	if code := c.agent.stop(t); code != 0 {
		t.Fatalf("agent exited %d on SIGTERM:\n%s", code, c.agent.out)
	}
	c.agent = start(t, c.agentArgs...)
	eventuallyOut(t, "the restarted agent reports its pods", func() (string, bool) {
		out, err := keelson("get", "pods", "-o", "json")
		return out, err == nil && strings.Count(out, `"restartCount": 0`) == 4 && strings.Count(out, `"ready": true`) == 4
	})
	// Its status posts went through: a heartbeat after the restart.
	eventuallyOut(t, "node Ready after the agent's restart", func() (string, bool) {
		out, err := keelson("get", "nodes")
		return out, err == nil && strings.Contains(out, "node-a") && strings.Contains(out, " Ready")
	})
	if after := containerIDs(t, d.Socket); !slices.Equal(after, before) {
		t.Errorf("containers changed across an agent restart:\nbefore %v\nafter  %v", before, after)
	}
}

// loggingBinaries lists the programs running as logging binaries of this
// package's containers: processes given a log path in its temp dir.
func loggingBinaries(t *testing.T) []string {
	t.Helper()
	procs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if i := slices.Index(args, logs.DriverArg); i > 0 && i+1 < len(args) && strings.HasPrefix(args[i+1], os.TempDir()) {
			out = append(out, args[0])
		}
	}
	return out
}

// procCluster is keelson as people run it: a server and an agent process,
// a private containerd with the busybox image imported by keelson image
// import, and the Git repository the server syncs (its deploy folder).
type procCluster struct {
	containerd    *containerdtest.Daemon
	server, agent *proc
	agentArgs     []string
	repo          string
	// keelson runs the keelson CLI against the server as an admin.
	keelson func(args ...string) (string, error)
}

func startProcCluster(t testing.TB) *procCluster {
	d := containerdtest.StartDaemon(t)
	dir := t.TempDir()
	archive := busyboxArchive(t, dir)
	if out, err := exec.Command(binary, "image", "import", "--containerd-socket", d.Socket, archive).CombinedOutput(); err != nil {
		t.Fatalf("image import: %v\n%s", err, out)
	}

	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte("admin-token,admin,uid-admin,\"system:masters\"\nnode-token,system:node:node-a,uid-node,\"system:nodes\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "node.token"), []byte("node-token\n"), 0o600)
	data := filepath.Join(dir, "server")
	api, etcdClient := freeAddr(t), etcdtest.FreeURL(t)
	repo := filepath.Join(dir, "repo")
	gitRun(t, "", "init", "-q", "-b", "main", repo)
	commit(t, repo, "README", "the cluster\n", "start")
	server := start(t, "server", "--data-dir", data, "--listen", api, "--token-auth-file", tokens,
		"--repo", repo, "--path", "deploy", "--sync-interval", "1s",
		"--etcd-listen-client", etcdClient, "--etcd-listen-peer", etcdtest.FreeURL(t))
	waitHTTPS(t, server, "https://"+api+"/readyz")

	bridge := fmt.Sprintf("ks%d", os.Getpid()%100000)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	agentAddr := freeAddr(t)
	t.Cleanup(func() { cleanNode(t, d.Socket, filepath.Join(dir, "agent")) })
	agentArgs := []string{"agent", "--server", "https://" + api, "--ca-file", filepath.Join(data, "tls", "ca.crt"),
		"--token-file", filepath.Join(dir, "node.token"), "--node-name", "node-a", "--host-ip", "127.0.0.1",
		"--containerd-socket", d.Socket, "--data-dir", filepath.Join(dir, "agent"),
		"--cni-bridge", bridge, "--no-masquerade", "--listen", agentAddr}
	c := &procCluster{containerd: d, server: server, agentArgs: agentArgs, repo: repo}
	c.agent = start(t, agentArgs...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent output:\n%s\nserver output:\n%s", c.agent.out, server.out)
		}
	})
	kubeconfig := filepath.Join(dir, "kubeconfig")
	out, err := exec.Command(binary, "kubeconfig", "--server", "https://"+api, "--token", "admin-token", "--data-dir", data).Output()
	if err != nil {
		t.Fatalf("keelson kubeconfig: %v", err)
	}
	os.WriteFile(kubeconfig, out, 0o600)
	c.keelson = func(args ...string) (string, error) {
		out, err := exec.Command(binary, append(args, "--kubeconfig", kubeconfig)...).CombinedOutput()
		return string(out), err
	}
	return c
}

// busyboxArchive writes the busybox image's OCI archive (from the
// machine's static busybox) into dir and returns its path, for keelson
// image import.
func busyboxArchive(t testing.TB, dir string) string {
	t.Helper()
	archive := filepath.Join(dir, "busybox.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ociarchive.BuildBusybox(f, "/bin/busybox", ociarchive.BusyboxRef); err != nil {
		t.Fatal(err)
	}
	return archive
}

// containerIDs lists the IDs of the containers keelson runs on a containerd,
// sorted.
func containerIDs(t testing.TB, socket string) []string {
	t.Helper()
	rt, err := containerd.New(t.Context(), socket, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	cs, err := rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

func appsYAML(replicas int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo hello from keelson; while true; do :; done"]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %[1]s
        imagePullPolicy: IfNotPresent
        command: [httpd, -f, -p, "8080"]
`, ociarchive.BusyboxRef, replicas)
}

func gitRun(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// commit writes one file of the repository and commits it.
func commit(t testing.TB, repo, file, content, msg string) {
	t.Helper()
	path := filepath.Join(repo, file)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, repo, "add", file)
	gitRun(t, repo, "commit", "-q", "-m", msg)
}

func eventuallyOut(t testing.TB, what string, ok func() (string, bool)) {
	t.Helper()
	eventuallyWithin(t, time.Minute, what, ok)
}

func waitHTTPS(t testing.TB, p *proc, url string) {
	t.Helper()
	client := insecureClient
	eventuallyOut(t, url, func() (string, bool) {
		select {
		case <-p.done:
			t.Fatalf("keelson exited:\n%s", p.out)
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			return err.Error(), false
		}
		resp.Body.Close()
		return resp.Status, resp.StatusCode == http.StatusOK
	})
}

// cleanNode removes what the agent left running (it is killed, as a crash
// would): containers, and the namespaces held by mounts in its data dir.
func cleanNode(t testing.TB, socket, agentDir string) {
	rt, err := containerd.New(context.Background(), socket, "")
	if err != nil {
		t.Error(err)
		return
	}
	defer rt.Close()
	cs, _ := rt.List(context.Background())
	for _, c := range cs {
		rt.Remove(context.Background(), c.ID)
	}
	nss, _ := filepath.Glob(filepath.Join(agentDir, "netns", "*"))
	for _, ns := range nss {
		network.RemoveNetNS(ns)
	}
	// The pods' in-memory volumes (secrets, ServiceAccount tokens) stay
	// mounted while their pods run, and the agent stopped with them running.
	containerdtest.UnmountAll(agentDir)
}
