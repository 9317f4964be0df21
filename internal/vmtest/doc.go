// Package vmtest runs a program in a throwaway Linux VM whose init mounts the
// cgroup hierarchy a test asks for, v1 or v2, so that resource limits, OOM
// reports and usage figures are tested on both whatever the machine runs.
//
// The VM is qemu-system-x86_64 under software emulation, booting Debian's
// kernel from the cache hack/vm-kernel.sh fills (or KEELSON_VM_KERNEL and
// KEELSON_VM_MODULES) with an initramfs built in the test's temp dir: the
// machine's static busybox, containerd, containerd-shim-runc-v2 and runc,
// the shared libraries they and the payload load, the overlay module, and
// the payload as /payload. It has no network but lo and no disk: /tmp and
// /run are tmpfs. The payload's stdout and stderr are the serial console;
// Run returns them and its exit code, and stops qemu before it returns.
//
// A test usually runs its own binary in the VM, re-invoked for a test that
// acts only there (KEELSON_IN_VM=1):
//
//	func TestLimits(t *testing.T) {
//		if os.Getenv("KEELSON_IN_VM") == "1" {
//			t.Skip("runs the VMs")
//		}
//		self, _ := os.Executable()
//		for _, v := range []int{1, 2} {
//			res := vmtest.Run(t, vmtest.Config{Cgroup: v, Binary: self,
//				Args: []string{"-test.run=^TestLimitsInVM$", "-test.v"}})
//			if res.ExitCode != 0 {
//				t.Errorf("cgroup v%d:\n%s", v, res.Output)
//			}
//		}
//	}
//
// Run skips the test without root, qemu, the kernel, busybox, containerd or
// runc, and fails it instead under KEELSON_REQUIRE_CONTAINERD=1 (CI). A boot
// takes some 4 to 8 seconds on a machine without KVM.
package vmtest
