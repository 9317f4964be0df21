package containerdtest

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keelson/keelson/agent/logs"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

// NewRuntime starts a private containerd (StartDaemon), connects a runtime to
// it, and imports localhost/busybox:latest built from the machine's static
// busybox, so tests can run containers at once.
func NewRuntime(t testing.TB, opts ...containerd.Option) (*containerd.Runtime, *Daemon) {
	t.Helper()
	d := StartDaemon(t)
	rt, err := containerd.New(t.Context(), d.Socket, "", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	var archive bytes.Buffer
	if err := ociarchive.BuildBusybox(&archive, "/bin/busybox", ociarchive.BusyboxRef); err != nil {
		t.Fatalf("build the busybox image (apt-get install busybox-static): %v", err)
	}
	imgs, err := rt.Import(t.Context(), &archive)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Ref != ociarchive.BusyboxRef {
		t.Fatalf("importing busybox gave %+v", imgs)
	}
	return rt, d
}

// BuildLogger builds cmd/keelson-logger into dir and returns its path, for
// tests whose containers should log as a node's do.
func BuildLogger(dir string) (string, error) {
	path := filepath.Join(dir, logs.LoggerName)
	out, err := exec.Command("go", "build", "-o", path, "github.com/keelson/keelson/cmd/keelson-logger").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", logs.LoggerName, err, out)
	}
	return path, nil
}
