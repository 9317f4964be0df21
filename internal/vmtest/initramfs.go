package vmtest

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// guestBinaries are the programs the VM offers the payload besides busybox,
// from the host's PATH, each in the guest's /bin.
var guestBinaries = []string{"containerd", "containerd-shim-runc-v2", "runc"}

// buildInitramfs writes the VM's initial root to out: busybox, the guest
// binaries and the payload with the shared libraries they load, the kernel
// modules to load, and script as /init.
func buildInitramfs(out, tmp string, k kernel, cfg Config, script []byte) error {
	tr := tree{}
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root", "newroot"} {
		tr.dir(d)
	}
	// The kernel gives init /dev/console as its stdio before devtmpfs is up.
	tr.chardev("dev/console", 5, 1)
	tr.inline("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	tr.inline("etc/group", []byte("root:x:0:\n"), 0o644)
	tr.inline("etc/hosts", []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644)
	tr.inline("init", script, 0o755)

	if err := addBusybox(tr); err != nil {
		return err
	}
	dynamic := []string{cfg.Binary}
	for _, name := range guestBinaries {
		p, err := exec.LookPath(name)
		if err != nil {
			return fmt.Errorf("%s for the VM: %w (apt-get install containerd runc)", name, err)
		}
		tr.file("bin/"+name, p, 0o755)
		dynamic = append(dynamic, p)
	}
	tr.file("payload", cfg.Binary, 0o755)
	for _, bin := range dynamic {
		libs, err := sharedLibs(bin)
		if err != nil {
			return err
		}
		for _, lib := range libs {
			tr.file(lib, lib, 0o755)
		}
	}
	mods, err := addModules(tr, k.modules, tmp, append(append([]string(nil), baseModules...), cfg.Modules...))
	if err != nil {
		return err
	}
	tr.inline("etc/vmtest-modules", []byte(strings.Join(mods, "\n")+"\n"), 0o644)
	return writeCPIO(out, tr)
}

// addBusybox adds Debian's static busybox as /bin/busybox and /bin/sh, and a
// link for each applet it has, as busybox's own --install would.
func addBusybox(tr tree) error {
	const busybox = "/bin/busybox"
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w (apt-get install busybox-static)", busybox, err)
	}
	if libs, err := sharedLibs(busybox); err != nil || len(libs) > 0 {
		return fmt.Errorf("%s must be static (apt-get install busybox-static): %v", busybox, err)
	}
	tr.file("bin/busybox", busybox, 0o755)
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" && !strings.Contains(applet, "/") {
			tr.symlink("bin/"+applet, "busybox")
		}
	}
	for _, l := range []string{"sbin", "usr/bin", "usr/sbin"} {
		tr.symlink(l, "/bin")
	}
	return nil
}

// sharedLibs returns the absolute paths of the shared libraries, and the
// dynamic loader, that ldd says bin loads; none for a static binary.
func sharedLibs(bin string) ([]string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ldd", bin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if all := stdout.String() + stderr.String(); strings.Contains(all, "not a dynamic executable") || strings.Contains(all, "statically linked") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, stderr.String())
	}
	var libs []string
	for _, line := range strings.Split(stdout.String(), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)", or the loader
		// "/lib64/ld-linux-x86-64.so.2 (0x…)"; the vDSO has no file.
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "=>" {
			if f[2] == "not" {
				return nil, fmt.Errorf("ldd %s: %s", bin, strings.TrimSpace(line))
			}
			libs = append(libs, f[2])
		} else if len(f) >= 1 && filepath.IsAbs(f[0]) {
			libs = append(libs, f[0])
		}
	}
	return libs, nil
}
