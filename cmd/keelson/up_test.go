package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestUpStopsAndResumes runs keelson up as people run it: inside a Git
// repository (no --repo), with no containerd on the socket it is given, so it
// starts its own under the data dir. Pods from Git run; containerd killed
// is started again; Ctrl-C stops it cleanly, containerd included; started again on the same data dir it
// resumes: the same objects, the same containers, none added.
func TestUpStopsAndResumes(t *testing.T) {
	u := newUpFixture(t)
	commit(t, u.repo, "deploy/apps.yaml", appsYAML(2), "hello and web")

	up := u.start(t, filepath.Join(u.repo, "deploy"))
	u.waitPods(t, up, 3)
	for _, want := range []string{"starting keelson's own", "containerd ready (started by keelson up", "revision ", "path=deploy"} {
		if !strings.Contains(up.out.String(), want) {
			t.Errorf("keelson up's output lacks %q:\n%s", want, up.out)
		}
	}
	pods, ctrs := u.podUIDs(t), u.containers(t)

	// containerd dies: keelson up starts it again; the containers go on.
	m := regexp.MustCompile(`msg="containerd started" component=containerd pid=(\d+)`).FindStringSubmatch(up.out.String())
	if m == nil {
		t.Fatalf("no containerd pid in keelson up's output:\n%s", up.out)
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventuallyOut(t, "containerd restarted", func() (string, bool) {
		out := up.out.String()
		return out, strings.Contains(out, "containerd exited, restarting") && strings.Count(out, `msg="containerd started"`) == 2 && answers(u.socket())
	})
	u.waitPods(t, up, 3)
	if got := u.containers(t); !slices.Equal(got, ctrs) {
		t.Errorf("containers after containerd restarted: %v, want the same as before: %v", got, ctrs)
	}

	if code := u.interrupt(t, up); code != 0 {
		t.Fatalf("keelson up exited %d after SIGINT:\n%s", code, up.out)
	}
	if !strings.Contains(up.out.String(), "containerd stopped") || answers(u.socket()) {
		t.Fatalf("keelson up's containerd still answers after it stopped:\n%s", up.out)
	}

	up = u.start(t, filepath.Join(u.repo, "deploy"))
	u.waitPods(t, up, 3)
	if got := u.podUIDs(t); !slices.Equal(got, pods) {
		t.Errorf("pods after resuming: %v, want the same as before: %v", got, pods)
	}
	if got := u.containers(t); !slices.Equal(got, ctrs) {
		t.Errorf("containers after resuming: %v, want the same as before: %v", got, ctrs)
	}
	if code := u.interrupt(t, up); code != 0 {
		t.Fatalf("keelson up exited %d after the second SIGINT:\n%s", code, up.out)
	}
}

// upFixture is what a keelson up test runs on: a Git repository, a data dir,
// the busybox image, and free addresses.
type upFixture struct {
	dir, repo, data, archive string
	args                     []string
}

func newUpFixture(t testing.TB) *upFixture {
	t.Helper()
	containerdtest.Require(t)
	// Unix socket paths are limited to 108 bytes: keep the dir short.
	dir, err := os.MkdirTemp("", "kup-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	u := &upFixture{dir: dir, repo: filepath.Join(dir, "repo"), data: filepath.Join(dir, "data"), archive: filepath.Join(dir, "busybox.tar")}
	f, err := os.Create(u.archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociarchive.BuildBusybox(f, "/bin/busybox", ociarchive.BusyboxRef); err != nil {
		t.Fatalf("build the busybox image (apt-get install busybox-static): %v", err)
	}
	f.Close()
	gitRun(t, "", "init", "-q", "-b", "main", u.repo)
	commit(t, u.repo, "README", "the cluster\n", "start")

	bridge := fmt.Sprintf("ku%d", os.Getpid()%100000)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	t.Cleanup(func() { cleanUpNode(t, u.data) })
	// A cluster CIDR of its own, so pod addresses reached from this host do
	// not collide with other tests' bridges.
	cidr := fmt.Sprintf("10.%d.0.0/16", 100+os.Getpid()%100)
	u.args = []string{"up", "--data-dir", u.data, "--listen", freeAddr(t),
		"--etcd-listen-client", etcdtest.FreeURL(t), "--etcd-listen-peer", etcdtest.FreeURL(t),
		"--containerd-socket", filepath.Join(dir, "none.sock"), "--import-image", u.archive,
		// The node's address is the machine's (pods reach hostNetwork pods
		// there), so the agent listens on every address.
		"--node-name", "local", "--agent-listen", ":" + strings.Split(freeAddr(t), ":")[1],
		"--cni-bridge", bridge, "--no-masquerade", "--cluster-cidr", cidr, "--sync-interval", "1s",
		// Ports 80 and 443 are the machine's: a test that serves Ingresses
		// asks for ports of its own.
		"--ingress-http", "", "--ingress-https", ""}
	return u
}

func (u *upFixture) socket() string { return filepath.Join(u.data, "containerd", "containerd.sock") }

// start runs keelson up in the working directory wd with extra flags.
func (u *upFixture) start(t testing.TB, wd string, extra ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, isolate(t, append(slices.Clone(u.args), extra...))...)
	cmd.Dir = wd
	var p *proc
	// Registered first, so it runs after startCmd's cleanup has stopped it.
	t.Cleanup(func() {
		if t.Failed() && p != nil {
			t.Logf("keelson up output:\n%s", p.out)
		}
	})
	p = startCmd(t, cmd)
	return p
}

// interrupt sends SIGINT, as Ctrl-C does, and returns the exit code.
func (u *upFixture) interrupt(t testing.TB, p *proc) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("keelson up did not stop within 60s of SIGINT:\n%s", p.out)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (u *upFixture) keelson(args ...string) (string, error) {
	out, err := exec.Command(binary, append(args, "--kubeconfig", adminKubeconfig(u.data))...).CombinedOutput()
	return string(out), err
}

// waitPods waits until n pods run, all of them Ready. Pods of Jobs, which
// come and go, are not counted.
func (u *upFixture) waitPods(t testing.TB, p *proc, n int) {
	t.Helper()
	eventuallyOut(t, fmt.Sprintf("%d pods running and ready", n), func() (string, bool) {
		select {
		case <-p.done:
			t.Fatalf("keelson up exited:\n%s", p.out)
		default:
		}
		out, err := u.keelson("get", "pods", "-A")
		if err != nil {
			return out, false
		}
		pods := u.pods(t, "!batch.kubernetes.io/job-name")
		ready := 0
		for _, pod := range pods {
			if pod.Status.Phase == corev1.PodRunning && podReady(&pod) {
				ready++
			}
		}
		return out, len(pods) == n && ready == n
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (u *upFixture) client(t testing.TB) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig(u.data))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ContentType = "application/json"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pods lists every pod.
func (u *upFixture) pods(t testing.TB, selector string) []corev1.Pod {
	t.Helper()
	list, err := u.client(t).CoreV1().Pods("").List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// podUIDs are "namespace/name/uid" of every pod, sorted.
func (u *upFixture) podUIDs(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, p := range u.pods(t, "") {
		out = append(out, p.Namespace+"/"+p.Name+"/"+string(p.UID))
	}
	slices.Sort(out)
	return out
}

// containers are the IDs of the containers keelson up's containerd runs.
func (u *upFixture) containers(t testing.TB) []string {
	t.Helper()
	return containerIDs(t, u.socket())
}

// cleanUpNode removes what keelson up leaves running when it stops (its
// containers keep running for the next start): it starts the containerd of
// the data dir again, removes the containers, stops it and unmounts.
func cleanUpNode(t testing.TB, data string) {
	dir := filepath.Join(data, "containerd")
	sock := filepath.Join(dir, "containerd.sock")
	if _, err := os.Stat(filepath.Join(dir, "config.toml")); err != nil {
		return // keelson up never started one
	}
	var cmd *exec.Cmd
	if !answers(sock) {
		cmd = exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"), "--root", filepath.Join(dir, "root"),
			"--state", filepath.Join(dir, "state"), "--address", sock)
		if err := cmd.Start(); err != nil {
			t.Error(err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := waitSocket(ctx, sock, nil)
		cancel()
		if err != nil {
			t.Error(err)
		}
	}
	cleanNode(t, sock, filepath.Join(data, "agent"))
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	containerdtest.KillShims(sock)
	containerdtest.UnmountAll(dir)
	containerdtest.UnmountAll(filepath.Join(data, "agent"))
}

// TestUpOutsideGit: with neither --repo nor --config, keelson up syncs the
// Git repository it runs in; outside one it says so and exits 1, before
// starting anything.
func TestUpOutsideGit(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "up", "--data-dir", filepath.Join(dir, "data"))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("keelson up outside a Git repository: %v, want exit 1:\n%s", err, out)
	}
	want := "keelson: no --repo, and " + dir + " is not inside a Git repository: run keelson up in one, or pass --repo (and --path)\n"
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Errorf("keelson up made its data dir before refusing")
	}
}

// TestUpUsesRunningContainerd: a containerd that answers on
// --containerd-socket is used as it is, and none is started.
func TestUpUsesRunningContainerd(t *testing.T) {
	u := newUpFixture(t)
	d := containerdtest.StartDaemon(t)
	t.Cleanup(func() { cleanNode(t, d.Socket, filepath.Join(u.data, "agent")) })
	commit(t, u.repo, "deploy/apps.yaml", appsYAML(1), "hello and web")

	up := u.start(t, u.repo, "--path", "deploy", "--containerd-socket", d.Socket)
	u.waitPods(t, up, 2)
	if out := up.out.String(); !strings.Contains(out, "containerd ready at "+d.Socket) || strings.Contains(out, "starting keelson's own") {
		t.Errorf("keelson up did not use the containerd on %s:\n%s", d.Socket, out)
	}
	if _, err := os.Stat(filepath.Join(u.data, "containerd")); err == nil {
		t.Errorf("keelson up made %s/containerd though a containerd answered", u.data)
	}
	if code := u.interrupt(t, up); code != 0 {
		t.Fatalf("keelson up exited %d after SIGINT:\n%s", code, up.out)
	}
	if !answers(d.Socket) {
		t.Errorf("the machine's containerd stopped with keelson up")
	}
}
