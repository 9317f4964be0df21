package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keelson/keelson/agent/runtime"
)

// Config tunes the simulation.
type Config struct {
	// StartLatency is how long Start takes.
	StartLatency time.Duration
	// Images are on the node from the start.
	Images []string
	// Commands are the executables images hold; DefaultCommands when nil.
	Commands []string
}

// DefaultCommands are busybox's common applets.
var DefaultCommands = []string{"sh", "sleep", "true", "false", "httpd", "cat", "echo", "ls", "env", "nc", "wget", "date", "busybox"}

// Runtime is the simulated runtime.
type Runtime struct {
	cfg        Config
	mu         sync.Mutex
	containers map[string]*container
	images     map[string]runtime.Image
	down       error
	watchers   []chan runtime.Exit
}

type container struct {
	c     runtime.Container
	argv  []string
	timer *time.Timer
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a simulated runtime.
func New(cfg Config) *Runtime {
	if cfg.Commands == nil {
		cfg.Commands = DefaultCommands
	}
	r := &Runtime{cfg: cfg, containers: map[string]*container{}, images: map[string]runtime.Image{}}
	for _, ref := range cfg.Images {
		r.images[ref] = runtime.Image{Ref: ref, ID: "sha256:" + hash(ref)}
	}
	return r
}

func hash(s string) string {
	b := make([]byte, 32)
	copy(b, s)
	return hex.EncodeToString(b)
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Create implements runtime.Containers.
func (r *Runtime) Create(_ context.Context, spec runtime.ContainerSpec) (string, error) {
	if spec.Image == "" || spec.Name == "" || spec.PodUID == "" {
		return "", fmt.Errorf("%w: image, container name and pod uid are required", runtime.ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	img, ok := r.images[spec.Image]
	if !ok {
		return "", fmt.Errorf("image %s: %w", spec.Image, runtime.ErrImageNotFound)
	}
	argv := append(append([]string(nil), spec.Command...), spec.Args...)
	if len(spec.Command) == 0 && len(spec.Args) == 0 {
		argv = []string{"sh"}
	}
	id := newID()
	identity := runtime.ContainerSpec{PodUID: spec.PodUID, PodNamespace: spec.PodNamespace, PodName: spec.PodName,
		Name: spec.Name, Attempt: spec.Attempt, Image: spec.Image}
	r.containers[id] = &container{
		c:    runtime.Container{ID: id, Spec: identity, State: runtime.StateCreated, ImageID: img.ID, CreatedAt: time.Now()},
		argv: argv,
	}
	return id, nil
}

// Start implements runtime.Containers.
func (r *Runtime) Start(ctx context.Context, id string) error {
	if r.cfg.StartLatency > 0 {
		select {
		case <-time.After(r.cfg.StartLatency):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	if c.c.State != runtime.StateCreated {
		return fmt.Errorf("start container %s: %w: it is %s", id, runtime.ErrStartFailed, c.c.State)
	}
	if !slices.Contains(r.cfg.Commands, path.Base(c.argv[0])) {
		return fmt.Errorf("start container %s: %w: exec %q: no such file or directory", id, runtime.ErrStartFailed, c.argv[0])
	}
	c.c.State, c.c.StartedAt, c.c.Pid = runtime.StateRunning, time.Now(), 1
	if code, after, exits := model(c.argv); exits {
		c.timer = time.AfterFunc(after, func() { r.exit(id, code) })
	}
	return nil
}

// model says how the simulated process of argv ends: with which code, after
// how long, or not by itself.
func model(argv []string) (code int32, after time.Duration, exits bool) {
	switch path.Base(argv[0]) {
	case "true":
		return 0, 0, true
	case "false":
		return 1, 0, true
	case "sleep":
		if len(argv) > 1 {
			if s, err := strconv.ParseFloat(argv[1], 64); err == nil {
				return 0, time.Duration(s * float64(time.Second)), true
			}
		}
	case "sh":
		if len(argv) == 3 && argv[1] == "-c" {
			if n, ok := strings.CutPrefix(strings.TrimSpace(argv[2]), "exit "); ok {
				if v, err := strconv.Atoi(strings.TrimSpace(n)); err == nil {
					return int32(v), 0, true
				}
			}
		}
	}
	return 0, 0, false
}

func (r *Runtime) exit(id string, code int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok && c.c.State == runtime.StateRunning {
		c.c.State, c.c.ExitCode, c.c.FinishedAt, c.c.Pid = runtime.StateExited, code, time.Now(), 0
		for _, w := range r.watchers {
			select {
			case w <- runtime.Exit{ContainerID: id, PodUID: c.c.Spec.PodUID}:
			default: // a watcher that does not keep up misses it, and resyncs
			}
		}
	}
}

// Exits implements runtime.Watcher: each simulated exit, as it happens.
func (r *Runtime) Exits(ctx context.Context) <-chan runtime.Exit {
	ch := make(chan runtime.Exit, 4096)
	r.mu.Lock()
	r.watchers = append(r.watchers, ch)
	r.mu.Unlock()
	out := make(chan runtime.Exit)
	go func() {
		defer close(out)
		defer func() {
			r.mu.Lock()
			r.watchers = slices.DeleteFunc(r.watchers, func(w chan runtime.Exit) bool { return w == ch })
			r.mu.Unlock()
		}()
		for {
			select {
			case e := <-ch:
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Stop implements runtime.Containers: a running process is killed (137).
func (r *Runtime) Stop(_ context.Context, id string, _ time.Duration) error {
	r.mu.Lock()
	c, ok := r.containers[id]
	if ok && c.timer != nil {
		c.timer.Stop()
	}
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	r.exit(id, 137)
	return nil
}

// Remove implements runtime.Containers.
func (r *Runtime) Remove(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	delete(r.containers, id)
	return nil
}

// Inspect implements runtime.Containers.
func (r *Runtime) Inspect(_ context.Context, id string) (runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.Container{}, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return c.c, nil
}

// List implements runtime.Containers.
func (r *Runtime) List(_ context.Context) ([]runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]runtime.Container, 0, len(r.containers))
	for _, c := range r.containers {
		out = append(out, c.c)
	}
	return out, nil
}

// ListPod implements runtime.Containers.
func (r *Runtime) ListPod(_ context.Context, podUID string) ([]runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.Container
	for _, c := range r.containers {
		if c.c.Spec.PodUID == podUID {
			out = append(out, c.c)
		}
	}
	return out, nil
}

// Ready implements runtime.Runtime: the simulation serves until SetDown.
func (r *Runtime) Ready(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down
}

// SetDown makes Ready report err (nil: serving again), as a runtime that
// stopped would.
func (r *Runtime) SetDown(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = err
}

// ListImages implements runtime.Images.
func (r *Runtime) ListImages(context.Context) ([]runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]runtime.Image, 0, len(r.images))
	for _, img := range r.images {
		out = append(out, img)
	}
	return out, nil
}

// RemoveImage implements runtime.Images.
func (r *Runtime) RemoveImage(_ context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.images[ref]; !ok {
		return fmt.Errorf("image %s: %w", ref, runtime.ErrImageNotFound)
	}
	delete(r.images, ref)
	return nil
}

// Image implements runtime.Images.
func (r *Runtime) Image(_ context.Context, ref string) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	img, ok := r.images[ref]
	if !ok {
		return runtime.Image{}, fmt.Errorf("image %s: %w", ref, runtime.ErrImageNotFound)
	}
	return img, nil
}

// Pull implements runtime.Images: the simulation reaches no registry.
func (r *Runtime) Pull(ctx context.Context, ref string, _ runtime.PullOptions) (runtime.Image, error) {
	if img, err := r.Image(ctx, ref); err == nil {
		return img, nil
	}
	return runtime.Image{}, fmt.Errorf("pull %s: %w: the simulated runtime reaches no registry", ref, runtime.ErrImageNotFound)
}

// Import implements runtime.Images: it reads the image names from the
// archive's index and records them.
func (r *Runtime) Import(_ context.Context, archive io.Reader) ([]runtime.Image, error) {
	refs, err := archiveRefs(archive)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.Image
	for _, ref := range refs {
		img := runtime.Image{Ref: ref, ID: "sha256:" + hash(ref)}
		r.images[ref] = img
		out = append(out, img)
	}
	return out, nil
}

// Exec implements runtime.Execer: the model's commands exit as they would
// (true 0, false 1, sh -c "exit N" N); anything else succeeds with no output.
func (r *Runtime) Exec(_ context.Context, id string, cmd []string, _ time.Duration) ([]byte, int, error) {
	r.mu.Lock()
	c, ok := r.containers[id]
	r.mu.Unlock()
	if !ok || c.c.State != runtime.StateRunning {
		return nil, 0, fmt.Errorf("exec in container %s: it is not running: %w", id, runtime.ErrNotFound)
	}
	if len(cmd) == 0 {
		return nil, 0, fmt.Errorf("%w: exec of an empty command", runtime.ErrInvalid)
	}
	if code, _, exits := model(cmd); exits {
		return nil, int(code), nil
	}
	return nil, 0, nil
}

// Stats implements runtime.Statser: a running simulated container uses 1ms of
// CPU per second it has run and no memory.
func (r *Runtime) Stats(_ context.Context, id string) (runtime.Usage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok || c.c.State != runtime.StateRunning {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: it is not running: %w", id, runtime.ErrNotFound)
	}
	return simUsage(c), nil
}

// simUsage is a simulated process's use: a thousandth of a core.
func simUsage(c *container) runtime.Usage {
	now := time.Now()
	return runtime.Usage{Time: now, CPUNanos: uint64(now.Sub(c.c.StartedAt) / 1000)}
}

// StatsAll implements runtime.Statser.
func (r *Runtime) StatsAll(context.Context) (map[string]runtime.Usage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]runtime.Usage{}
	for id, c := range r.containers {
		if c.c.State == runtime.StateRunning {
			out[id] = simUsage(c)
		}
	}
	return out, nil
}
