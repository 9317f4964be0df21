package containerd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keelson/keelson/agent/logs"
	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/runtimetest"
)

// TestMain lets this test binary serve as the containers' logging binary, as
// the keelson binary does in production.
func TestMain(m *testing.M) {
	if logs.IsDriver(os.Args[1:]) {
		os.Exit(logs.DriverMain(os.Args[1:]))
	}
	os.Exit(containerdtest.Clean(m).Run())
}

// newRuntime starts a private containerd with the busybox image imported.
func newRuntime(t *testing.T) (*containerd.Runtime, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rt, d := containerdtest.NewRuntime(t, containerd.WithLogDriver(self))
	return rt, d.Socket
}

func TestSuite(t *testing.T) {
	rt, _ := newRuntime(t) // one containerd for the suite; each case cleans up
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime { return rt })
}

func TestGracePeriodHonoured(t *testing.T) {
	rt, _ := newRuntime(t)
	ctx := t.Context()
	spec := runtimetest.Spec("trap", "sh", "-c", `trap "exit 7" TERM; while true; do sleep 0.05; done`)
	id, err := rt.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Remove(context.Background(), id)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	runtimetest.WaitState(t, rt, id, runtime.StateRunning)
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	if err := rt.Stop(ctx, id, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	c := runtimetest.WaitState(t, rt, id, runtime.StateExited)
	if c.ExitCode != 7 {
		t.Fatalf("exit code %d: the container's own SIGTERM handler should have ended it with 7", c.ExitCode)
	}
}

func TestEnvAndLogs(t *testing.T) {
	rt, _ := newRuntime(t)
	ctx := t.Context()
	logPath := filepath.Join(t.TempDir(), "c.log")
	spec := runtimetest.Spec("env", "sh", "-c", `echo "hello $WHO from $(hostname)"; echo "to stderr" >&2; exit $CODE`)
	spec.Env = []string{"WHO=keelson", "CODE=5"}
	spec.LogPath = logPath
	id, err := rt.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Remove(context.Background(), id)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if c := runtimetest.WaitState(t, rt, id, runtime.StateExited); c.ExitCode != 5 {
		t.Fatalf("exit code %d, want 5 from $CODE", c.ExitCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	var b []byte
	for {
		b, _ = os.ReadFile(logPath)
		if strings.Contains(string(b), "hello keelson from pod-env") && strings.Contains(string(b), "to stderr") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %q does not hold the container's output", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	streams := map[string]string{}
	for _, raw := range strings.SplitAfter(strings.TrimSpace(string(b)), "\n") {
		l, err := logs.Parse([]byte(raw))
		if err != nil {
			t.Fatalf("the log is not in the CRI format: %v\n%s", err, b)
		}
		streams[string(l.Content)] = l.Stream
	}
	if streams["hello keelson from pod-env"] != "stdout" || streams["to stderr"] != "stderr" {
		t.Fatalf("streams %v", streams)
	}
}

// TestReadopt is the ground of agent restart safety: a new client of the same
// containerd finds the running container, with its identity, untouched.
func TestReadopt(t *testing.T) {
	rt, sock := newRuntime(t)
	ctx := t.Context()
	id, err := rt.Create(ctx, runtimetest.Spec("keep", "sleep", "3600"))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Remove(context.Background(), id)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	before := runtimetest.WaitState(t, rt, id, runtime.StateRunning)
	rt.Close()

	again, err := containerd.New(ctx, sock, "")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	defer again.Remove(context.Background(), id) // rt is closed: its deferred Remove cannot
	cs, err := again.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != id || cs[0].State != runtime.StateRunning || cs[0].Pid != before.Pid || cs[0].Spec.PodName != "pod-keep" {
		t.Fatalf("after reconnect: %+v, want the running container %s (pid %d)", cs, id, before.Pid)
	}
	if v, err := again.Version(ctx); err != nil || v == "" {
		t.Fatalf("containerd version: %q %v", v, err)
	}
}

// TestResourcesSecurityMounts checks that the spec's cgroup limits (read from
// the host, through the process's cgroup), user, read-only root and bind
// mounts are what runc applied.
func TestResourcesSecurityMounts(t *testing.T) {
	rt, _ := newRuntime(t)
	ctx := t.Context()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "greeting"), []byte("hi from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "c.log")
	uid, gid := int64(65534), int64(65534)
	spec := runtimetest.Spec("limits", "sh", "-c", `
		echo "uid=$(id -u) gid=$(id -g)"
		echo "data=$(cat /data/greeting)"
		touch /rootfs-write 2>/dev/null && echo "root=writable" || echo "root=readonly"
		touch /data/x 2>/dev/null && echo "data=writable" || echo "data=readonly"
		echo done; exec sleep 3600`)
	spec.LogPath = logPath
	spec.Resources = runtime.Resources{MemoryLimit: 64 << 20, CPUShares: 512, CPUQuota: 50000}
	spec.Security = runtime.Security{RunAsUser: &uid, RunAsGroup: &gid, ReadOnlyRootFS: true, CapDrop: []string{"ALL"}}
	spec.Mounts = []runtime.Mount{{Source: dir, Destination: "/data", ReadOnly: true}}
	id, err := rt.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Remove(context.Background(), id)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	c := runtimetest.WaitState(t, rt, id, runtime.StateRunning)
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out, "done") && time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		out = string(b)
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"uid=65534 gid=65534", "data=hi from the host", "root=readonly", "data=readonly"} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	if u, err := rt.Stats(ctx, id); err != nil || u.MemoryWorkingSet == 0 || u.MemoryWorkingSet > 64<<20 || u.Processes != 1 || u.CPUNanos == 0 {
		t.Errorf("stats of a running container: %+v %v (want memory in use, under its 64Mi limit, CPU time, and one process)", u, err)
	}
	for file, want := range cgroupLimits(t, 64<<20, 512, 50000) {
		if got, err := containerdtest.CgroupFile(c.Pid, file); err != nil || got != want {
			t.Errorf("%s = %q, want %q (%v)", file, got, want, err)
		}
	}
}

// cgroupLimits are the cgroup files and values runc writes for a memory
// limit, CPU shares and a CFS quota (period 100ms), on the cgroup version
// of this machine.
func cgroupLimits(t *testing.T, memory int64, shares uint64, quota int64) map[string]string {
	switch containerdtest.CgroupVersion(t) {
	case 1:
		files := map[string]string{
			"memory/memory.limit_in_bytes": fmt.Sprint(memory),
			"cpu/cpu.shares":               fmt.Sprint(shares),
			"cpu/cpu.cfs_quota_us":         fmt.Sprint(quota),
			"cpu/cpu.cfs_period_us":        "100000",
		}
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
			files["memory/memory.memsw.limit_in_bytes"] = fmt.Sprint(memory) // no swap beyond the limit
		}
		return files
	default:
		// runc's conversion of shares (2..262144) to weight (1..10000).
		weight := 1 + ((shares-2)*9999)/262142
		return map[string]string{
			"memory.max":      fmt.Sprint(memory),
			"memory.swap.max": "0",
			"cpu.weight":      fmt.Sprint(weight),
			"cpu.max":         fmt.Sprintf("%d 100000", quota),
		}
	}
}

// TestOOMKilled: a container whose process the kernel kills for going over
// its memory limit is reported OOMKilled (cgroup v1's memory.oom_control
// or v2's memory.events, through the shim's OOM event), one that merely
// fails is not.
func TestOOMKilled(t *testing.T) {
	rt, _ := newRuntime(t)
	ctx := t.Context()
	t.Logf("cgroup v%d", containerdtest.CgroupVersion(t))
	exits := rt.Exits(ctx)
	run := func(name, script string) runtime.Container {
		spec := runtimetest.Spec(name, "sh", "-c", script)
		spec.Resources = runtime.Resources{MemoryLimit: 32 << 20}
		id := runtimetest.Started(t, rt, spec)
		// The OOM event and the exit come in either order: after the exit,
		// the other has a few seconds to come.
		var exited runtime.Container
		timeout := time.After(time.Minute)
		for {
			select {
			case e := <-exits:
				if e.ContainerID != id {
					continue
				}
			case <-timeout:
				if exited.State == runtime.StateExited {
					return exited
				}
				t.Fatalf("container %s never exited", name)
			}
			c, err := rt.Inspect(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.State == runtime.StateExited {
				if c.OOMKilled {
					return c
				}
				if exited.State != runtime.StateExited {
					timeout = time.After(3 * time.Second)
				}
				exited = c
			}
		}
	}
	// tail keeps all of its input without a newline: 100 MB against 32 MiB.
	hog := run("hog", "head -c 100000000 /dev/zero | tail")
	if !hog.OOMKilled || hog.ExitCode == 0 {
		t.Errorf("the memory hog: OOMKilled %v, exit code %d; want OOM killed with a non-zero exit", hog.OOMKilled, hog.ExitCode)
	}
	fails := run("fails", "exit 3")
	if fails.OOMKilled || fails.ExitCode != 3 {
		t.Errorf("a container that fails on its own: OOMKilled %v, exit code %d; want false, 3", fails.OOMKilled, fails.ExitCode)
	}
}

// TestContainerdRestart: containerd restarted under a running client. The
// container goes on (its shim outlives the daemon) and the same client, once
// containerd is back, sees it running as before.
func TestContainerdRestart(t *testing.T) {
	rt, d := containerdtest.NewRuntime(t)
	id, err := rt.Create(t.Context(), runtimetest.Spec("survivor", "sleep", "3600"))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Remove(context.Background(), id)
	if err := rt.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	before := runtimetest.WaitState(t, rt, id, runtime.StateRunning)
	d.Restart(t)
	var after runtime.Container
	deadline := time.Now().Add(30 * time.Second)
	for {
		after, err = rt.Inspect(t.Context(), id)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client did not reconnect to the restarted containerd: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after.State != runtime.StateRunning || after.Pid != before.Pid {
		t.Fatalf("after containerd restart: %s pid %d, before: running pid %d", after.State, after.Pid, before.Pid)
	}
}

func TestExecOutputAndTimeout(t *testing.T) {
	rt, _ := newRuntime(t)
	ctx := t.Context()
	id, err := rt.Create(ctx, runtimetest.Spec("execout", "sleep", "3600"))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Remove(context.Background(), id)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	runtimetest.WaitState(t, rt, id, runtime.StateRunning)
	out, code, err := rt.Exec(ctx, id, []string{"sh", "-c", "echo hello; echo oops >&2"}, 10*time.Second)
	if err != nil || code != 0 || !strings.Contains(string(out), "hello") || !strings.Contains(string(out), "oops") {
		t.Fatalf("exec: %q code %d err %v", out, code, err)
	}
	if _, _, err := rt.Exec(ctx, id, []string{"sleep", "30"}, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("a command past its timeout: got %v", err)
	}
}
