package runtimetest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

// Image is the image the suite runs; the factory must put it on the node.
const Image = ociarchive.BusyboxRef

// Run runs the suite; newRuntime returns a runtime with Image on it and no
// containers.
func Run(t *testing.T, newRuntime func(t *testing.T) runtime.Runtime) {
	cases := []struct {
		name string
		run  func(t *testing.T, rt runtime.Runtime)
	}{
		{"Lifecycle", testLifecycle},
		{"ExitCode", testExitCode},
		{"MissingImage", testMissingImage},
		{"StartFailure", testStartFailure},
		{"List", testList},
		{"Images", testImages},
		{"RemoveImage", testRemoveImage},
		{"Invalid", testInvalid},
		{"Exec", testExec},
		{"Stats", testStats},
		{"Exits", testExits},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newRuntime(t)) })
	}
}

// Spec returns a container spec of a pod named after the test.
func Spec(name string, command ...string) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		PodUID: "uid-" + name, PodNamespace: "default", PodName: "pod-" + name,
		Name: name, Image: Image, Command: command,
	}
}

// WaitState polls Inspect until the container is in state want.
func WaitState(t *testing.T, rt runtime.Runtime, id string, want runtime.State) runtime.Container {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := rt.Inspect(t.Context(), id)
		if err != nil {
			t.Fatalf("inspect %s: %v", id, err)
		}
		if c.State == want {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s is %s after 20s, want %s", id, c.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustCreate(t *testing.T, rt runtime.Runtime, spec runtime.ContainerSpec) string {
	t.Helper()
	id, err := rt.Create(t.Context(), spec)
	if err != nil {
		t.Fatalf("create %s: %v", spec.Name, err)
	}
	t.Cleanup(func() { _ = rt.Remove(context.Background(), id) })
	return id
}

// Started creates and starts a container of spec, removed when the test
// ends, and returns its id.
func Started(t *testing.T, rt runtime.Runtime, spec runtime.ContainerSpec) string {
	t.Helper()
	id := mustCreate(t, rt, spec)
	if err := rt.Start(t.Context(), id); err != nil {
		t.Fatalf("start %s: %v", spec.Name, err)
	}
	return id
}

func testLifecycle(t *testing.T, rt runtime.Runtime) {
	ctx := t.Context()
	spec := Spec("life", "sleep", "3600")
	spec.Attempt = 2
	id := mustCreate(t, rt, spec)
	c, err := rt.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != runtime.StateCreated {
		t.Fatalf("new container is %s, want created", c.State)
	}
	if c.Spec.PodUID != spec.PodUID || c.Spec.PodName != spec.PodName || c.Spec.PodNamespace != "default" ||
		c.Spec.Name != "life" || c.Spec.Attempt != 2 || c.Spec.Image != Image {
		t.Fatalf("identity did not survive: %+v", c.Spec)
	}
	if c.ImageID == "" {
		t.Fatal("no image id")
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	c = WaitState(t, rt, id, runtime.StateRunning)
	if c.StartedAt.IsZero() || c.Pid == 0 {
		t.Fatalf("running container without start time or pid: %+v", c)
	}
	// sleep as the container's init process ignores SIGTERM: it is killed.
	if err := rt.Stop(ctx, id, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c = WaitState(t, rt, id, runtime.StateExited)
	if c.ExitCode != 137 || c.FinishedAt.IsZero() {
		t.Fatalf("stopped container: exit %d finished %v, want 137 and a time", c.ExitCode, c.FinishedAt)
	}
	if err := rt.Stop(ctx, id, time.Second); err != nil {
		t.Fatalf("stopping an exited container: %v", err)
	}
	if err := rt.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Inspect(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("inspect after remove: got %v, want ErrNotFound", err)
	}
	if err := rt.Remove(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("second remove: got %v, want ErrNotFound", err)
	}
	if err := rt.Start(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("start after remove: got %v, want ErrNotFound", err)
	}
}

func testExitCode(t *testing.T, rt runtime.Runtime) {
	for _, code := range []int32{0, 3, 42} {
		id := mustCreate(t, rt, Spec(fmt.Sprint("exit", code), "sh", "-c", fmt.Sprintf("exit %d", code)))
		if err := rt.Start(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if c := WaitState(t, rt, id, runtime.StateExited); c.ExitCode != code {
			t.Fatalf("exit code %d, want %d", c.ExitCode, code)
		}
	}
}

func testMissingImage(t *testing.T, rt runtime.Runtime) {
	spec := Spec("noimage", "true")
	spec.Image = "localhost/does-not-exist:1.0"
	if _, err := rt.Create(t.Context(), spec); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("got %v, want ErrImageNotFound", err)
	}
}

func testStartFailure(t *testing.T, rt runtime.Runtime) {
	id := mustCreate(t, rt, Spec("nocmd", "/no/such/binary"))
	err := rt.Start(t.Context(), id)
	if !errors.Is(err, runtime.ErrStartFailed) {
		t.Fatalf("got %v, want ErrStartFailed", err)
	}
	if _, err := rt.Inspect(t.Context(), id); err != nil {
		t.Fatalf("a container that failed to start must still be inspectable: %v", err)
	}
}

func testList(t *testing.T, rt runtime.Runtime) {
	a := mustCreate(t, rt, Spec("a", "sleep", "3600"))
	b := mustCreate(t, rt, Spec("b", "true"))
	cs, err := rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range cs {
		got[c.ID] = c.Spec.Name
	}
	if got[a] != "a" || got[b] != "b" || len(got) != 2 {
		t.Fatalf("list gave %v, want %s=a and %s=b", got, a, b)
	}
	// Spec gives each name a pod of its own: a pod's list holds only its own.
	second := Spec("a2", "true")
	second.PodUID = Spec("a", "").PodUID
	a2 := mustCreate(t, rt, second)
	for uid, want := range map[string][]string{Spec("a", "").PodUID: {a, a2}, Spec("b", "").PodUID: {b}, "uid-none": nil} {
		cs, err := rt.ListPod(t.Context(), uid)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		slices.Sort(ids)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("ListPod(%s) gave %v, want %v", uid, ids, want)
		}
	}
}

func testImages(t *testing.T, rt runtime.Runtime) {
	img, err := rt.Image(t.Context(), Image)
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != Image || img.ID == "" {
		t.Fatalf("image %+v", img)
	}
	if _, err := rt.Image(t.Context(), "localhost/nope:1"); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("got %v, want ErrImageNotFound", err)
	}
	all, err := rt.ListImages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(all, func(i runtime.Image) bool { return i.Ref == Image }); i < 0 || all[i].ID != img.ID {
		t.Fatalf("ListImages gave %+v, want %s with id %s among them", all, Image, img.ID)
	}
	if err := rt.Ready(t.Context()); err != nil {
		t.Fatalf("a serving runtime is not ready: %v", err)
	}
}

// ImportFile puts on the node an image named ref whose one layer holds a
// file of size bytes, and returns it: each size is an image of its own,
// and one size under two refs is one image with two names.
func ImportFile(t *testing.T, rt runtime.Runtime, ref string, size int) runtime.Image {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	data := bytes.Repeat([]byte(fmt.Sprint(size)), size)[:size]
	if err := tw.WriteHeader(&tar.Header{Name: "data", Mode: 0o644, Size: int64(size)}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	var archive bytes.Buffer
	if err := ociarchive.Write(&archive, ref, layer.Bytes(), ocispec.ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	imgs, err := rt.Import(t.Context(), &archive)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("import %s: %+v %v", ref, imgs, err)
	}
	return imgs[0]
}

func testRemoveImage(t *testing.T, rt runtime.Runtime) {
	ctx := t.Context()
	const ref = "localhost/removable:1"
	ImportFile(t, rt, ref, 1<<20)
	if _, err := rt.Image(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := rt.RemoveImage(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Image(ctx, ref); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("after RemoveImage: %v, want ErrImageNotFound", err)
	}
	all, err := rt.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(all, func(i runtime.Image) bool { return i.Ref == ref }) {
		t.Fatalf("ListImages still has %s: %+v", ref, all)
	}
	if err := rt.RemoveImage(ctx, ref); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("removing it again: %v, want ErrImageNotFound", err)
	}
	if _, err := rt.Image(ctx, Image); err != nil {
		t.Fatalf("another image went with it: %v", err)
	}
}

func testInvalid(t *testing.T, rt runtime.Runtime) {
	spec := Spec("x", "true")
	spec.Name = ""
	if _, err := rt.Create(t.Context(), spec); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
}

func testExec(t *testing.T, rt runtime.Runtime) {
	ctx := t.Context()
	id := mustCreate(t, rt, Spec("exec", "sleep", "3600"))
	if _, _, err := rt.Exec(ctx, id, []string{"true"}, time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("exec before start: got %v, want ErrNotFound", err)
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	WaitState(t, rt, id, runtime.StateRunning)
	for cmd, want := range map[string]int{"true": 0, "false": 1, "exit 3": 3} {
		argv := []string{cmd}
		if cmd == "exit 3" {
			argv = []string{"sh", "-c", cmd}
		}
		_, code, err := rt.Exec(ctx, id, argv, 10*time.Second)
		if err != nil || code != want {
			t.Fatalf("exec %v: code %d err %v, want %d", argv, code, err, want)
		}
	}
}

func testStats(t *testing.T, rt runtime.Runtime) {
	ctx := t.Context()
	id := mustCreate(t, rt, Spec("busy", "sh", "-c", "while true; do :; done"))
	if _, err := rt.Stats(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("stats before start: got %v, want ErrNotFound", err)
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	WaitState(t, rt, id, runtime.StateRunning)
	first, err := rt.Stats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	second, err := rt.Stats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if second.CPUNanos <= first.CPUNanos || !second.Time.After(first.Time) {
		t.Fatalf("a busy container's CPU time did not grow: %+v then %+v", first, second)
	}
	exited := mustCreate(t, rt, Spec("done", "true"))
	if err := rt.Start(ctx, exited); err != nil {
		t.Fatal(err)
	}
	WaitState(t, rt, exited, runtime.StateExited)
	all, err := rt.StatsAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := all[id]; !ok || u.CPUNanos < second.CPUNanos {
		t.Errorf("StatsAll gave %+v for the running container, want at least its last CPU time %d", u, second.CPUNanos)
	}
	if _, ok := all[exited]; ok {
		t.Errorf("StatsAll reports an exited container")
	}
}

func testExits(t *testing.T, rt runtime.Runtime) {
	ctx, cancel := context.WithCancel(t.Context())
	exits := rt.Exits(ctx)
	long := mustCreate(t, rt, Spec("long", "sleep", "3600"))
	if err := rt.Start(t.Context(), long); err != nil {
		t.Fatal(err)
	}
	WaitState(t, rt, long, runtime.StateRunning)
	// An exec's end is no container's exit.
	if _, _, err := rt.Exec(t.Context(), long, []string{"true"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	short := mustCreate(t, rt, Spec("short", "sh", "-c", "exit 3"))
	if err := rt.Start(t.Context(), short); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-exits:
		if e.ContainerID != short || e.PodUID != Spec("short", "").PodUID {
			t.Fatalf("first exit %+v, want container %s of pod %s", e, short, Spec("short", "").PodUID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit reported for a container that exited")
	}
	cancel()
	for range exits { // closed once ctx ends
	}
}
