package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/keelson/keelson/agent/runtime"
)

// maxExecOutput bounds what an exec keeps of its output, as the kubelet keeps
// 10 KiB of a probe's.
const maxExecOutput = 10 << 10

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Exec implements runtime.Execer.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, int, error) {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, 0, fmt.Errorf("exec in container %s: it is not running: %w", id, runtime.ErrNotFound)
	}
	if err != nil {
		return nil, 0, err
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, 0, err
	}
	pspec := *spec.Process
	pspec.Args, pspec.Terminal = cmd, false
	out := &limitedBuffer{max: maxExecOutput}
	proc, err := task.Exec(ctx, "exec-"+newID()[:12], &pspec, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		return nil, 0, fmt.Errorf("exec in container %s: %w", id, err)
	}
	defer proc.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	exited, err := proc.Wait(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := proc.Start(ctx); err != nil {
		return nil, 0, fmt.Errorf("exec %q in container %s: %w", cmd, id, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case st := <-exited:
		code, _, err := st.Result()
		if io := proc.IO(); io != nil {
			io.Wait()
		}
		out.mu.Lock()
		defer out.mu.Unlock()
		return bytes.Clone(out.buf.Bytes()), int(code), err
	case <-timer.C:
		_ = proc.Kill(ctx, syscall.SIGKILL)
		return nil, 0, fmt.Errorf("exec %q in container %s: %w after %s", cmd, id, errTimeout, timeout)
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

var errTimeout = errors.New("timed out")
