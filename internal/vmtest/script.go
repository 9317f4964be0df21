package vmtest

import (
	"fmt"
	"regexp"
	"strings"
)

// initScript is /init, run by the kernel from the initramfs. The first
// stage moves onto a bind mount of the initial root: the initial root
// (rootfs) cannot be pivoted away from, and runc pivots into each
// container's root. The second stage mounts what the payload needs, runs
// it, prints its exit code after the marker, and powers off. A step that
// fails prints why and powers off without the marker.
const initScript = `#!/bin/sh
export PATH=/bin
fail() { echo "vmtest init: $*" >&2; poweroff -f; exit 1; }
if [ "$1" != stage2 ]; then
	mount --bind / /newroot || fail "bind mount of / failed"
	cd /newroot && mount --move . / || fail "moving the root failed"
	exec chroot . /bin/sh /init stage2
fi
mount -t proc proc /proc || fail "mount /proc failed"
mount -t sysfs sysfs /sys || fail "mount /sys failed"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev failed"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts || fail "mount /dev/pts failed"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mount /dev/shm failed"
mount -t tmpfs -o mode=1777 tmpfs /tmp || fail "mount /tmp failed"
mount -t tmpfs -o mode=755 tmpfs /run || fail "mount /run failed"
%s
ip link set lo up || fail "lo up failed"
for m in $(cat /etc/vmtest-modules); do
	insmod "$m" || fail "insmod $m failed"
done
cd /tmp
export HOME=/root KEELSON_IN_VM=1
%s
echo %s
/payload %s </dev/null
code=$?
echo %s $code
# The host stops the VM when it reads the line above; the pause lets the
# serial line send it before the power goes.
sleep 1
poweroff -f
`

// cgroupV1 mounts a tmpfs at /sys/fs/cgroup with one cgroup v1 hierarchy per
// controller, cpu and cpuacct together and net_cls and net_prio together,
// with the links systemd makes to them; the controllers this kernel lacks
// (net_cls, rdma, misc) are left out.
const cgroupV1 = `mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup || fail "mount /sys/fs/cgroup failed"
for c in cpuset cpu,cpuacct blkio memory devices freezer pids net_cls,net_prio perf_event hugetlb rdma misc; do
	first=${c%%,*}
	grep -q "^$first	" /proc/cgroups || continue
	mkdir -p /sys/fs/cgroup/$c
	mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c || fail "mount cgroup v1 $c failed"
	if [ "$first" != "$c" ]; then
		ln -s $c /sys/fs/cgroup/$first
		ln -s $c /sys/fs/cgroup/${c#*,}
	fi
done
for c in cpu cpuacct memory pids cpuset devices freezer blkio; do
	[ -d /sys/fs/cgroup/$c ] || fail "cgroup v1 controller $c missing"
done`

// cgroupV2 mounts the unified hierarchy and hands the controllers keelson
// limits to the root's children; hugetlb, rdma and misc where the kernel has
// them.
const cgroupV2 = `mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "mount cgroup2 failed"
echo "+cpu +memory +pids +cpuset +io" > /sys/fs/cgroup/cgroup.subtree_control || fail "enabling cgroup2 controllers failed"
for c in hugetlb rdma misc; do
	echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done`

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// script returns /init for cfg, whose payload's output the host finds
// between "<marker> start" and "<marker> exit <code>".
func script(cfg Config, marker string) (string, error) {
	var cgroups string
	switch cfg.Cgroup {
	case 1:
		cgroups = cgroupV1
	case 2:
		cgroups = cgroupV2
	default:
		return "", fmt.Errorf("vmtest: Config.Cgroup is %d: want 1 or 2", cfg.Cgroup)
	}
	var env []string
	for _, kv := range cfg.Env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !envName.MatchString(name) {
			return "", fmt.Errorf("vmtest: Config.Env %q: want NAME=value", kv)
		}
		env = append(env, "export "+quote(kv))
	}
	args := make([]string, len(cfg.Args))
	for i, a := range cfg.Args {
		args[i] = quote(a)
	}
	return fmt.Sprintf(initScript, cgroups, strings.Join(env, "\n"), marker+" start",
		strings.Join(args, " "), marker+" exit"), nil
}

// quote makes s one word for the shell.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
