package cluster

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is one process of the cluster (an etcd member, a server, an agent)
// running in its host's network namespace. It can be killed and started
// again with the same arguments, as a machine's service manager would.
type Proc struct {
	// Name is the process's role and host, e.g. "server-h1".
	Name string
	host *Host
	bin  string
	args []string
	log  string // where its output goes, appended across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs the process in its host's network namespace (and only that:
// its mounts are this machine's, as containerd's are).
func (p *Proc) start(t testing.TB) {
	t.Helper()
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(out, "=== %s start %s\n", time.Now().Format(time.RFC3339Nano), p.Name)
	cmd := exec.Command("nsenter", append([]string{"--net=" + p.host.NS.Path, p.bin}, p.args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a kill reaches what it started, as a
	// service manager's stop does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// Pid is the process's id while it runs, else 0.
func (p *Proc) Pid() int {
	if !p.Running() {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Running reports whether the process runs.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill ends the process at once with SIGKILL, as a crash or a power cut
// does: nothing of it runs any more when Kill returns.
func (p *Proc) Kill(t testing.TB) { p.signal(t, syscall.SIGKILL, 0) }

// Stop ends the process with SIGTERM, as a service manager's stop does,
// waiting up to 30 s for it to exit before killing it.
func (p *Proc) Stop(t testing.TB) { p.signal(t, syscall.SIGTERM, 30*time.Second) }

func (p *Proc) signal(t testing.TB, sig syscall.Signal, grace time.Duration) {
	t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			t.Errorf("%s did not stop within %s of %s: killed", p.Name, grace, sig)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	<-done
}

// Start starts a stopped process again with the same arguments.
func (p *Proc) Start(t testing.TB) {
	t.Helper()
	if p.Running() {
		t.Fatalf("%s runs already", p.Name)
	}
	p.start(t)
}

// Output returns everything the process printed, across its restarts.
func (p *Proc) Output() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(bytes.TrimSpace(b))
}
