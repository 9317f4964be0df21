package vmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keelson/keelson/agent/runtime/containerdtest"
)

// Config is one VM run.
type Config struct {
	// Cgroup is the cgroup version the VM's init mounts at /sys/fs/cgroup:
	// 1 (a hierarchy per controller) or 2 (the unified hierarchy). Required.
	Cgroup int
	// Binary is the host path of the program to run in the VM, as /payload.
	// Required.
	Binary string
	// Args are the payload's arguments.
	Args []string
	// Env is the payload's environment besides PATH, HOME, KEELSON_IN_VM=1
	// and the host's KEELSON_REQUIRE_CONTAINERD, each NAME=value.
	Env []string
	// Memory is the VM's memory in MiB; 1024 when zero.
	Memory int
	// Timeout ends the VM when the payload has not exited by then; 10
	// minutes when zero.
	Timeout time.Duration
	// Modules are kernel modules to load besides overlay, by name, with
	// what they need.
	Modules []string
}

// Result is how the payload ended.
type Result struct {
	// Output is what the payload wrote to stdout and stderr, with any kernel
	// messages printed meanwhile.
	Output string
	// ExitCode is the payload's exit status.
	ExitCode int
}

// DefaultCache is where hack/vm-kernel.sh puts the kernel and modules.
const DefaultCache = "/var/cache/keelson/vm/current"

type kernel struct {
	image   string // the bzImage
	modules string // the directory with modules.dep
}

// findKernel returns the kernel from KEELSON_VM_KERNEL and
// KEELSON_VM_MODULES, or else from DefaultCache: its ELF vmlinux, which
// qemu starts without the seconds the bzImage takes to unpack itself under
// emulation, or else its vmlinuz.
func findKernel() (kernel, error) {
	k := kernel{image: os.Getenv("KEELSON_VM_KERNEL"), modules: os.Getenv("KEELSON_VM_MODULES")}
	if k.image == "" {
		k.image = filepath.Join(DefaultCache, "vmlinux")
		if _, err := os.Stat(k.image); err != nil {
			k.image = filepath.Join(DefaultCache, "vmlinuz")
		}
	}
	if k.modules == "" {
		k.modules = filepath.Join(DefaultCache, "modules")
	}
	for _, f := range []string{k.image, filepath.Join(k.modules, "modules.dep")} {
		if _, err := os.Stat(f); err != nil {
			return kernel{}, fmt.Errorf("no VM kernel: %w (run hack/vm-kernel.sh, or set KEELSON_VM_KERNEL and KEELSON_VM_MODULES)", err)
		}
	}
	return k, nil
}

const qemu = "qemu-system-x86_64"

// Require skips the test when VMs cannot run here (no root, qemu, kernel,
// busybox, containerd or runc), or fails it under
// KEELSON_REQUIRE_CONTAINERD=1 (CI).
func Require(t testing.TB) {
	t.Helper()
	if why := missing(); why != "" {
		containerdtest.Unavailable(t, "VM tests", why)
	}
}

func missing() string {
	if os.Geteuid() != 0 {
		return "they need root"
	}
	if _, err := exec.LookPath(qemu); err != nil {
		return qemu + " not found on PATH (apt-get install --no-install-recommends qemu-system-x86)"
	}
	for _, bin := range append([]string{"/bin/busybox"}, guestBinaries...) {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " not found (apt-get install busybox-static containerd runc)"
		}
	}
	if _, err := findKernel(); err != nil {
		return err.Error()
	}
	return ""
}

// Run boots a VM with the cgroup hierarchy cfg asks for, runs cfg.Binary in
// it and returns how it ended. It fails the test when the VM cannot boot,
// crashes or times out, with the end of the console in the message.
func Run(t testing.TB, cfg Config) Result {
	t.Helper()
	Require(t)
	if cfg.Memory == 0 {
		cfg.Memory = 1024
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		t.Fatalf("vmtest: Config.Binary: %v", err)
	}
	if v, ok := os.LookupEnv("KEELSON_REQUIRE_CONTAINERD"); ok {
		cfg.Env = append([]string{"KEELSON_REQUIRE_CONTAINERD=" + v}, cfg.Env...)
	}
	k, err := findKernel()
	if err != nil {
		t.Fatal(err)
	}
	marker := newMarker()
	init, err := script(cfg, marker)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initramfs.cpio")
	start := time.Now()
	if err := buildInitramfs(initrd, dir, k, cfg, []byte(init)); err != nil {
		t.Fatalf("vmtest: build the initramfs: %v", err)
	}
	built := time.Now()
	var size int64
	if fi, err := os.Stat(initrd); err == nil {
		size = fi.Size()
	}
	con, err := boot(k, initrd, cfg, marker)
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	if booted := con.bootedAt(); !booted.IsZero() {
		t.Logf("vmtest: initramfs of %d MiB built in %s, cgroup v%d VM booted in %s, payload ran %s",
			size>>20, built.Sub(start).Round(time.Millisecond), cfg.Cgroup,
			booted.Sub(built).Round(time.Millisecond), time.Since(booted).Round(time.Millisecond))
	}
	out, code, ok := con.result()
	if !ok {
		t.Fatalf("vmtest: the VM ended without the payload's exit code: %v\nlast of the console:\n%s", con.end, con.tail(4000))
	}
	return Result{Output: out, ExitCode: code}
}

// boot runs qemu until the payload's exit line, the VM's end, or the
// timeout, and returns the console.
func boot(k kernel, initrd string, cfg Config, marker string) (*console, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	con := newConsole(marker)
	args := []string{"-nodefaults", "-no-user-config", "-machine", "pc"}
	// KVM where the machine offers it, with emulation (TCG) as qemu's
	// fallback when it cannot be used after all.
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		args = append(args, "-accel", "kvm")
	}
	// One virtual CPU: under emulation each is a busy host thread, and the
	// tests that run beside the VM (go test runs packages in parallel) need
	// the machine's cores too; starved, their etcd times out.
	cmd := exec.CommandContext(ctx, qemu, append(args, "-accel", "tcg", "-cpu", "max",
		"-smp", "1", "-m", strconv.Itoa(cfg.Memory),
		"-kernel", k.image, "-initrd", initrd,
		// mitigations=off: page-table isolation flushes the emulated TLB on
		// every system call, and a throwaway VM has nothing to protect.
		"-append", "console=ttyS0 quiet panic=-1 rdinit=/init mitigations=off",
		"-display", "none", "-monitor", "none", "-serial", "stdio",
		"-no-reboot", "-nic", "none")...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = con, &stderr
	// qemu dies with the test process, even when the test binary's own
	// timeout ends it before any cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", qemu, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		con.end = fmt.Errorf("the VM stopped (a kernel panic, or init failed)")
		if err != nil {
			con.end = fmt.Errorf("%s: %v: %s", qemu, err, strings.TrimSpace(stderr.String()))
		}
	case <-con.exited:
		cancel() // the payload is done: no need to wait for the power-off
		<-done
	case <-ctx.Done():
		<-done
		con.end = fmt.Errorf("timed out after %s", cfg.Timeout)
	}
	return con, nil
}

// newMarker returns a line prefix the payload cannot print by chance.
func newMarker() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "vmtest-" + hex.EncodeToString(b)
}
