package containerd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/agent/runtime/runtimetest"
)

// newRuntime starts a private containerd with the busybox image imported.
func newRuntime(t *testing.T) (*containerd.Runtime, string) {
	t.Helper()
	sock := containerdtest.Start(t)
	rt, err := containerd.New(t.Context(), sock, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	var archive bytes.Buffer
	if err := ociarchive.BuildBusybox(&archive, "/bin/busybox", ociarchive.BusyboxRef); err != nil {
		t.Fatalf("build busybox image (apt-get install busybox-static): %v", err)
	}
	imgs, err := rt.Import(t.Context(), &archive)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Ref != ociarchive.BusyboxRef {
		t.Fatalf("import gave %+v", imgs)
	}
	return rt, sock
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
	spec := runtimetest.Spec("env", "sh", "-c", `echo "hello $WHO from $(hostname)"; exit $CODE`)
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
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "hello keelson from pod-env") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %q does not hold the container's output", b)
		}
		time.Sleep(50 * time.Millisecond)
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
