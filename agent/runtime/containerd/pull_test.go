package containerd_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/keelson/keelson/agent/registry"
	"github.com/keelson/keelson/agent/registry/registrytest"
	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/runtimetest"
)

// TestPull pulls from an in-process registry: anonymously over plain HTTP
// (the registries file names it), with progress, then runs what it pulled.
func TestPull(t *testing.T) {
	reg := registrytest.Start(t, nil)
	ref := reg.PushBusybox(t, "team/app", "1")
	rt, _ := containerdtest.NewRuntime(t, containerd.WithRegistries(reg.Registries(t)))

	var mu sync.Mutex
	var last [2]int64
	img, err := rt.Pull(t.Context(), ref, runtime.PullOptions{Progress: func(fetched, total int64) {
		mu.Lock()
		defer mu.Unlock()
		last = [2]int64{fetched, total}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != ref || img.ID == "" || !strings.HasPrefix(img.RepoDigest(), reg.Host+"/team/app@sha256:") {
		t.Fatalf("pulled %+v (repo digest %q)", img, img.RepoDigest())
	}
	if last[1] == 0 || last[0] != last[1] {
		t.Errorf("the last progress was %d of %d bytes, want all of a known total", last[0], last[1])
	}
	all, err := rt.ListImages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, i := range all {
		if i.Ref == ref {
			found = true
			if i.Size < last[1] || i.Digest != img.Digest {
				t.Errorf("listed %+v: want the pulled digest and at least the %d bytes pulled", i, last[1])
			}
		}
	}
	if !found {
		t.Fatalf("ListImages does not list %s: %+v", ref, all)
	}
	spec := runtimetest.Spec("pulled", "sh", "-c", "exit 7")
	spec.Image = ref
	id, err := rt.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Remove(t.Context(), id) })
	if err := rt.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if c := runtimetest.WaitState(t, rt, id, runtime.StateExited); c.ExitCode != 7 {
		t.Errorf("the pulled image's container exited %d, want 7", c.ExitCode)
	}
}

// TestPullCredentials pulls from a registry that wants basic
// authentication: without a credential, and with a wrong one, the
// registry's refusal is ErrUnauthorized and says so; a wrong credential
// before a right one is passed over.
func TestPullCredentials(t *testing.T) {
	reg := registrytest.Start(t, map[string]string{"puller": "s3cret"})
	ref := reg.PushBusybox(t, "private/app", "1")
	rt, _ := containerdtest.NewRuntime(t, containerd.WithRegistries(reg.Registries(t)))
	wrong := registry.Credential{Username: "puller", Password: "guess", From: "default/wrong"}
	right := registry.Credential{Username: "puller", Password: "s3cret", From: "default/right"}

	for name, creds := range map[string][]registry.Credential{"none": nil, "wrong": {wrong}} {
		_, err := rt.Pull(t.Context(), ref, runtime.PullOptions{Credentials: creds})
		if !errors.Is(err, runtime.ErrUnauthorized) {
			t.Fatalf("%s: got %v, want ErrUnauthorized", name, err)
		}
		if name == "wrong" && !strings.Contains(err.Error(), "default/wrong") {
			t.Errorf("the error does not name the credential's secret: %v", err)
		}
		t.Logf("%s: %v", name, err)
	}
	if _, err := rt.Image(t.Context(), ref); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("a refused pull left the image: %v", err)
	}
	if _, err := rt.Pull(t.Context(), ref, runtime.PullOptions{Credentials: []registry.Credential{wrong, right}}); err != nil {
		t.Fatalf("wrong, then right: %v", err)
	}
	if _, err := rt.Pull(t.Context(), reg.Host+"/private/missing:1", runtime.PullOptions{Credentials: []registry.Credential{right}}); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("a missing image: got %v, want ErrImageNotFound", err)
	}
}

// TestPullFromMirror pulls docker.io/library/mirrored:1 with no route to
// Docker Hub: the registries file's mirror for docker.io serves it.
func TestPullFromMirror(t *testing.T) {
	reg := registrytest.Start(t, nil)
	reg.PushBusybox(t, "library/mirrored", "1")
	rt, _ := containerdtest.NewRuntime(t, containerd.WithRegistries(reg.Registries(t, "docker.io")))
	img, err := rt.Pull(t.Context(), "docker.io/library/mirrored:1", runtime.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != "docker.io/library/mirrored:1" || reg.ManifestRequests("library/mirrored") == 0 {
		t.Fatalf("pulled %+v; the mirror served %d manifests", img, reg.ManifestRequests("library/mirrored"))
	}
}
