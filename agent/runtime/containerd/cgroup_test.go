package containerd_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/internal/vmtest"
)

// cgroupTests are this package's tests of what depends on the cgroup
// version: limits, shares, quota, no swap, usage, and OOMKilled.
var cgroupTests = []string{"TestResourcesSecurityMounts", "TestOOMKilled"}

// TestOtherCgroupVersion runs the cgroup tests again in a VM whose init
// mounts the cgroup version this machine does not run (v2 on a v1 host,
// v1 on a v2 one), so both are tested on every machine. Under
// KEELSON_REQUIRE_CONTAINERD=1 it fails when the VM cannot run.
func TestOtherCgroupVersion(t *testing.T) {
	if os.Getenv("KEELSON_IN_VM") == "1" {
		t.Skip("in the VM: its host runs the other version")
	}
	other := 3 - containerdtest.CgroupVersion(t)
	vmtest.Require(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	res := vmtest.Run(t, vmtest.Config{
		Cgroup: other,
		Binary: self,
		Args:   []string{"-test.run=^(" + strings.Join(cgroupTests, "|") + ")$", "-test.v", "-test.count=1"},
		Env:    []string{"KEELSON_REQUIRE_CONTAINERD=1", fmt.Sprintf("KEELSON_WANT_CGROUP=%d", other)},
	})
	if res.ExitCode != 0 {
		t.Fatalf("the cgroup tests on cgroup v%d failed (exit %d):\n%s", other, res.ExitCode, res.Output)
	}
	// Each must have run and passed there, not skipped.
	for _, name := range cgroupTests {
		if !strings.Contains(res.Output, "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass on cgroup v%d:\n%s", name, other, res.Output)
		}
	}
	if want := fmt.Sprintf("cgroup v%d", other); !strings.Contains(res.Output, want) {
		t.Errorf("the VM's tests did not report %q:\n%s", want, res.Output)
	}
	t.Logf("cgroup v%d in a VM:\n%s", other, res.Output)
}
