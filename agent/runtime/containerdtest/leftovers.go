package containerdtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Runner is what a package's TestMain runs: *testing.M.
type Runner interface{ Run() int }

// Clean wraps a package's tests so that nothing they start outlives them:
// Run gives the tests a temp dir of their own (TMPDIR, which t.TempDir and
// os.MkdirTemp use), runs them, and then fails the run, naming what it
// found, if a process whose command line names that dir (a containerd, a
// containerd-shim, a keelson process) or a mount below it (a snapshot, a
// task's rootfs, a network namespace, a volume's tmpfs) is left. What it
// finds it kills and unmounts, so the machine is clean for what runs next.
//
//	func TestMain(m *testing.M) { os.Exit(containerdtest.Clean(m).Run()) }
func Clean(m Runner) Runner { return clean{m} }

type clean struct{ m Runner }

func (c clean) Run() int {
	dir, err := os.MkdirTemp("", "kt") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		fmt.Fprintln(os.Stderr, "containerdtest:", err)
		return 1
	}
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", dir)
	code := c.m.Run()
	if had {
		os.Setenv("TMPDIR", old)
	} else {
		os.Unsetenv("TMPDIR")
	}
	if err := leftovers(dir); err != nil {
		fmt.Fprintf(os.Stderr, "containerdtest: the tests left behind: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "containerdtest:", err)
	}
	return code
}

// leftovers reports the processes and mounts of dir still in place, a few
// seconds after the tests ended (a killed process takes a moment to go),
// and then removes them.
func leftovers(dir string) error {
	var procs []int
	var mounts []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		procs, mounts = processesNaming(dir), mountsBelow(dir)
		if len(procs)+len(mounts) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
	}
	var errs []error
	for _, pid := range procs {
		errs = append(errs, fmt.Errorf("process %d: %s", pid, cmdline(pid)))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, m := range mounts {
		errs = append(errs, fmt.Errorf("mount %s", m))
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	return errors.Join(errs...)
}

// processesNaming lists the processes other than this one whose command
// line names dir.
func processesNaming(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(cmdline(pid), dir) {
			out = append(out, pid)
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// mountsBelow lists the mount points below dir, deepest first.
func mountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// Field 5 is the mount point, with spaces and such octal-escaped.
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}
