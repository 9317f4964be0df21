package vmtest_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/runtimetest"
	"github.com/keelson/keelson/internal/vmtest"
)

const (
	cgroup2Magic = 0x63677270
	cgroupMagic  = 0x27e0eb
	tmpfsMagic   = 0x01021994
)

func inVM() bool { return os.Getenv("KEELSON_IN_VM") == "1" }

// TestVM boots a VM for each cgroup version with this test binary as the
// payload, running the TestGuest tests inside.
func TestVM(t *testing.T) {
	if inVM() {
		t.Skip("already in the VM")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, cgroup := range []int{1, 2} {
		t.Run(fmt.Sprintf("cgroup%d", cgroup), func(t *testing.T) {
			start := time.Now()
			res := vmtest.Run(t, vmtest.Config{
				Cgroup: cgroup,
				Binary: self,
				Args:   []string{"-test.run=^TestGuest", "-test.v"},
				Env:    []string{fmt.Sprintf("VMTEST_CGROUP=%d", cgroup)},
			})
			t.Logf("VM with cgroup v%d: %s in all", cgroup, time.Since(start).Round(time.Millisecond))
			if res.ExitCode != 0 || strings.Count(res.Output, "--- PASS: TestGuest") != 2 || strings.Contains(res.Output, "--- SKIP") {
				t.Fatalf("in the VM: exit code %d\n%s", res.ExitCode, res.Output)
			}
		})
	}
}

// TestGuest checks, inside the VM, what the VM promises its payload.
func TestGuest(t *testing.T) {
	if !inVM() {
		t.Skip("runs inside TestVM's VMs")
	}
	switch want := os.Getenv("VMTEST_CGROUP"); want {
	case "2":
		if m := fsMagic(t, "/sys/fs/cgroup"); m != cgroup2Magic {
			t.Errorf("/sys/fs/cgroup has filesystem magic %#x, want cgroup2's %#x", m, cgroup2Magic)
		}
		b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"memory", "cpu", "pids"} {
			if !strings.Contains(" "+strings.TrimSpace(string(b))+" ", " "+c+" ") {
				t.Errorf("cgroup.controllers %q lacks %s", b, c)
			}
		}
	case "1":
		if m := fsMagic(t, "/sys/fs/cgroup"); m != tmpfsMagic {
			t.Errorf("/sys/fs/cgroup has filesystem magic %#x, want tmpfs's %#x as on a cgroup v1 host", m, tmpfsMagic)
		}
		for _, c := range []string{"memory", "cpu", "pids"} {
			if m := fsMagic(t, "/sys/fs/cgroup/"+c); m != cgroupMagic {
				t.Errorf("/sys/fs/cgroup/%s has filesystem magic %#x, want cgroup v1's %#x", c, m, cgroupMagic)
			}
		}
	default:
		t.Fatalf("VMTEST_CGROUP is %q", want)
	}
	for _, bin := range []string{"containerd", "runc"} {
		if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil {
			t.Errorf("%s --version: %v\n%s", bin, err, out)
		}
	}
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fs), "\toverlay\n") {
		t.Errorf("overlay not in /proc/filesystems:\n%s", fs)
	}
}

// TestGuestContainer runs a container with a memory limit through keelson's
// containerd runtime inside the VM, and finds the limit in the VM's cgroup
// hierarchy.
func TestGuestContainer(t *testing.T) {
	if !inVM() {
		t.Skip("runs inside TestVM's VMs")
	}
	version := containerdtest.CgroupVersion(t)
	if want := os.Getenv("VMTEST_CGROUP"); fmt.Sprint(version) != want {
		t.Fatalf("containerdtest sees cgroup v%d, want v%s", version, want)
	}
	rt, _ := containerdtest.NewRuntime(t)
	spec := runtimetest.Spec("vm", "sleep", "600")
	spec.Resources.MemoryLimit = 64 << 20
	id := runtimetest.Started(t, rt, spec)
	c := runtimetest.WaitState(t, rt, id, runtime.StateRunning)
	file := map[int]string{1: "memory/memory.limit_in_bytes", 2: "memory.max"}[version]
	if got, err := containerdtest.CgroupFile(c.Pid, file); err != nil || got != fmt.Sprint(64<<20) {
		t.Errorf("container's %s = %q (%v), want %d", file, got, err, 64<<20)
	}
	if err := rt.Remove(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Inspect(t.Context(), id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("inspect after remove: %v, want ErrNotFound", err)
	}
}

func fsMagic(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	return st.Type
}
