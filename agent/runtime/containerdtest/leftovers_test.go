package containerdtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

type runFunc func() int

func (f runFunc) Run() int { return f() }

// TestCleanFindsLeftovers: a process naming the tests' temp dir and a
// mount below it, left by "tests" that passed, fail the run and are gone
// after it; tests that leave nothing pass.
func TestCleanFindsLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	if code := Clean(runFunc(func() int { return 0 })).Run(); code != 0 {
		t.Fatalf("tests that leave nothing: exit code %d", code)
	}
	var (
		dir  string
		proc *exec.Cmd
	)
	code := Clean(runFunc(func() int {
		dir = os.TempDir()
		mnt := filepath.Join(dir, "volume")
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		proc = exec.Command("sh", "-c", "sleep 60", filepath.Join(dir, "containerd.sock"))
		if err := proc.Start(); err != nil {
			t.Fatal(err)
		}
		go proc.Wait()
		return 0
	})).Run()
	if code == 0 {
		t.Error("a leftover process and mount passed the run")
	}
	if dir == os.TempDir() {
		t.Errorf("TMPDIR was not given back: still %s", dir)
	}
	if len(processesNaming(dir)) > 0 || len(mountsBelow(dir)) > 0 {
		t.Errorf("leftovers still there after the run: %v %v", processesNaming(dir), mountsBelow(dir))
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the tests' temp dir %s is still there: %v", dir, err)
	}
}
