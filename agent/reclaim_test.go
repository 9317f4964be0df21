package agent

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// TestDiskByPod: a pod's ephemeral storage is its emptyDir volumes on the
// data dir's file system and its logs, by container; a memory-backed
// emptyDir, and a file system mounted inside a volume, are not counted,
// and a file linked twice counts once.
func TestDiskByPod(t *testing.T) {
	root := t.TempDir()
	a := &Agent{cfg: Config{RootDir: root}}
	p := rankPod("w", "besteffort", 0, "")
	p.Spec.Volumes = []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "ram", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
	}
	dir := a.podDir(p.UID)
	write := func(path string, size int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	scratch := filepath.Join(dir, "volumes", "empty-dir", "scratch")
	write(filepath.Join(scratch, "a", "big"), 3<<20)
	if err := os.Link(filepath.Join(scratch, "a", "big"), filepath.Join(scratch, "again")); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "volumes", "empty-dir", "ram", "x"), 5<<20)
	write(filepath.Join(dir, "logs", "main_0.log"), 1<<20)
	write(filepath.Join(dir, "logs", "main_1.log"), 1<<20)
	write(filepath.Join(dir, "logs", "side_0.log"), 2<<20)
	mounted := false
	if os.Geteuid() == 0 {
		inner := filepath.Join(scratch, "inner")
		if err := os.MkdirAll(inner, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", inner, "tmpfs", 0, "size=16m"); err == nil {
			mounted = true
			t.Cleanup(func() { unix.Unmount(inner, unix.MNT_DETACH) })
			write(filepath.Join(inner, "elsewhere"), 4<<20)
		}
	}

	u := a.diskByPod([]*corev1.Pod{p})[p.UID]
	const slack = 64 << 10 // directories' own blocks
	if want := int64(7 << 20); u.total < want || u.total > want+slack {
		t.Errorf("total %d, want 7Mi (3Mi once in the emptyDir, 4Mi of logs), mounted inside: %v", u.total, mounted)
	}
	if u.byContainer["main"] != 2<<20 || u.byContainer["side"] != 2<<20 {
		t.Errorf("by container %v, want main and side 2Mi each", u.byContainer)
	}
	if n := a.diskByPod([]*corev1.Pod{rankPod("none", "besteffort", 0, "")})["uid-none"].total; n != 0 {
		t.Errorf("a pod with no files uses %d", n)
	}
}
