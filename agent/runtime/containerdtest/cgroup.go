package containerdtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// CgroupVersion is the cgroup version containers get on this machine: 2
// when /sys/fs/cgroup is a cgroup2 mount, 1 when the memory controller is
// mounted as a v1 hierarchy (legacy or hybrid). Where it cannot tell, the
// test is skipped, or fails under KEELSON_REQUIRE_CONTAINERD=1, so a check
// of cgroup files never passes by checking nothing.
//
// KEELSON_WANT_CGROUP=1 or 2 (set for tests run in a VM of that version)
// fails the test on any other.
func CgroupVersion(t testing.TB) int {
	t.Helper()
	v := cgroupVersion()
	if want := os.Getenv("KEELSON_WANT_CGROUP"); want != "" && want != fmt.Sprint(v) {
		t.Fatalf("cgroup version %d here, KEELSON_WANT_CGROUP=%s", v, want)
	}
	if v != 0 {
		return v
	}
	Unavailable(t, "cgroup tests", "cannot tell this machine's cgroup version: neither a cgroup2 mount at /sys/fs/cgroup nor a v1 memory hierarchy at /sys/fs/cgroup/memory")
	return 0
}

func cgroupVersion() int {
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &fs); err == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
		return 2
	}
	if err := unix.Statfs("/sys/fs/cgroup/memory", &fs); err == nil && fs.Type == unix.CGROUP_SUPER_MAGIC {
		return 1
	}
	return 0
}

// CgroupFile reads a file of the cgroup process pid is in, from the host:
// on cgroup v1 "controller/file" in that controller's hierarchy (e.g.
// "memory/memory.limit_in_bytes"), on v2 "file" in its one cgroup (e.g.
// "memory.max"). A file that does not exist is an error the caller sees.
func CgroupFile(pid uint32, file string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	controller, name, v1 := strings.Cut(file, "/")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var path string
		switch {
		case v1 && slices.Contains(strings.Split(f[1], ","), controller):
			path = filepath.Join("/sys/fs/cgroup", controller, f[2], name)
		case !v1 && f[0] == "0" && f[1] == "":
			path = filepath.Join("/sys/fs/cgroup", f[2], file)
		default:
			continue
		}
		v, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(v)), nil
	}
	return "", fmt.Errorf("no cgroup for %s of pid %d in:\n%s", file, pid, b)
}
