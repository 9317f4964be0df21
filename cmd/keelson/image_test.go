package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

func TestImageImport(t *testing.T) {
	sock := containerdtest.Start(t)
	archive := busyboxArchive(t, t.TempDir())
	out, err := exec.Command(binary, "image", "import", "--containerd-socket", sock, archive).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "imported "+ociarchive.BusyboxRef) {
		t.Fatalf("keelson image import: %v\n%s", err, out)
	}
	rt, err := containerd.New(t.Context(), sock, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if _, err := rt.Image(t.Context(), ociarchive.BusyboxRef); err != nil {
		t.Fatalf("image not in containerd after import: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.tar")
	os.WriteFile(bad, []byte("not an archive"), 0o600)
	out, err = exec.Command(binary, "image", "import", "--containerd-socket", sock, bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), bad) {
		t.Fatalf("importing garbage: %v\n%s (want an error naming the file)", err, out)
	}
}
