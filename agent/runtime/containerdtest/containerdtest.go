package containerdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Start runs a containerd for this test and returns its socket. Without root,
// containerd or runc, the test is skipped with the reason, unless
// KEELSON_REQUIRE_CONTAINERD=1 (CI), where it fails.
func Start(t testing.TB) string {
	t.Helper()
	return StartDaemon(t).Socket
}

// Daemon is a private containerd.
type Daemon struct {
	// Socket is the containerd socket.
	Socket string
	dir    string
	log    *os.File
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartDaemon is Start, returning the daemon so a test can restart it.
func StartDaemon(t testing.TB) *Daemon {
	t.Helper()
	Require(t)
	// Unix socket paths are limited to 108 bytes: keep the dir short.
	dir, err := os.MkdirTemp("", "kctd-")
	if err != nil {
		t.Fatal(err)
	}
	// The CRI plugin is kubelet's and sets up CNI of its own: keelson does not use it.
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Socket: filepath.Join(dir, "containerd.sock"), dir: dir, log: log}
	t.Cleanup(func() {
		d.stop()
		KillShims(d.Socket)
		log.Close()
		UnmountAll(filepath.Join(dir, "root"))
		UnmountAll(filepath.Join(dir, "state"))
		os.RemoveAll(dir)
	})
	d.start(t)
	return d
}

// Require skips the test when containerd tests cannot run here (no root,
// containerd or runc), or fails it under KEELSON_REQUIRE_CONTAINERD=1 (CI):
// for tests whose containerd another program starts.
func Require(t testing.TB) {
	t.Helper()
	if why := missing(); why != "" {
		Unavailable(t, "containerd tests", why)
	}
}

// Unavailable skips the test because what it needs cannot run here, and
// why, or fails it under KEELSON_REQUIRE_CONTAINERD=1 (CI), where no test
// may pass by not running.
func Unavailable(t testing.TB, what, why string) {
	t.Helper()
	if os.Getenv("KEELSON_REQUIRE_CONTAINERD") == "1" {
		t.Fatalf("%s cannot run: %s (KEELSON_REQUIRE_CONTAINERD=1)", what, why)
	}
	t.Skipf("%s skipped: %s", what, why)
}

func (d *Daemon) start(t testing.TB) {
	t.Helper()
	d.cmd = exec.Command("containerd", "--config", filepath.Join(d.dir, "config.toml"), "--root", filepath.Join(d.dir, "root"),
		"--state", filepath.Join(d.dir, "state"), "--address", d.Socket)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(d.cmd, d.done)
	if err := waitSocket(d.Socket, d.done, 30*time.Second); err != nil {
		out, _ := os.ReadFile(d.log.Name())
		t.Fatalf("containerd at %s: %v\n%s", d.Socket, err, out)
	}
}

// stop ends the daemon; containers' shims, and so the containers, go on.
func (d *Daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// Restart stops containerd and starts it again on the same root, state and
// socket, as a package upgrade or a crash and restart does.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	d.stop()
	d.start(t)
}

// Stop stops containerd until Start; containers' shims, and so the
// containers, go on, as when containerd crashes or is upgraded.
func (d *Daemon) Stop() { d.stop() }

// Start starts a stopped containerd again on the same root, state and
// socket.
func (d *Daemon) Start(t testing.TB) {
	t.Helper()
	d.start(t)
}

func missing() string {
	if os.Geteuid() != 0 {
		return "they need root"
	}
	for _, bin := range []string{"containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " not found on PATH (apt-get install containerd runc)"
		}
	}
	return ""
}

func waitSocket(sock string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("containerd exited while starting")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", sock)
		cancel()
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("socket not ready after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// UnmountAll lazily unmounts whatever containerd left mounted below dir
// (snapshots, task rootfs), so the temp dir can be removed.
func UnmountAll(dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir) {
			targets = append(targets, f[1])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(targets))) // deepest first
	for _, m := range targets {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// KillShims kills the shims of the containerd at socket sock that are still
// running, and the processes they hold, once a test is done with that
// containerd: a shim outlives its daemon by design (containers survive a
// containerd restart), so one whose container the test could not remove (a
// client closed before its cleanup, a task stuck while the daemon stopped)
// would stay on the machine with its container for ever.
func KillShims(sock string) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	parent := map[int][]int{}
	var shims []int
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid := parentOf(pid); ppid > 0 {
			parent[ppid] = append(parent[ppid], pid)
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if len(args) > 0 && strings.Contains(filepath.Base(args[0]), "containerd-shim") && slices.Contains(args, sock) {
			shims = append(shims, pid)
		}
	}
	for _, shim := range shims {
		for _, child := range parent[shim] {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
		_ = syscall.Kill(shim, syscall.SIGKILL)
	}
}

// parentOf reads a process's parent from /proc/PID/stat; 0 when unknown.
func parentOf(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command may hold spaces and parentheses: the fields that follow
	// start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
