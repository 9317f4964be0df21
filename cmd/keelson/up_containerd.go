package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// containerdConfig turns off the CRI plugin: it is the kubelet's, and would
// set up CNI of its own beside keelson's.
const containerdConfig = "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"

// supervisor runs keelson up's own containerd when none answers on the
// machine's socket: its root, state and socket under <data-dir>/containerd,
// restarted when it dies, stopped when keelson up stops. Containers run on
// in their shims while it is down.
type supervisor struct {
	dir    string
	socket string
	log    *slog.Logger
	ready  chan struct{} // closed when the socket first answers
	done   chan struct{} // closed when run returns
}

func newSupervisor(dataDir string, log *slog.Logger) *supervisor {
	dir := filepath.Join(dataDir, "containerd")
	return &supervisor{
		dir: dir, socket: filepath.Join(dir, "containerd.sock"),
		log:   log.With("component", "containerd"),
		ready: make(chan struct{}), done: make(chan struct{}),
	}
}

// prepare checks that containerd can be started here and writes its config.
func (s *supervisor) prepare() error {
	if _, err := exec.LookPath("containerd"); err != nil {
		return fmt.Errorf("no containerd answers and there is no containerd binary on the PATH to start one: apt-get install containerd runc (or pass --containerd-socket)")
	}
	if len(s.socket) > 100 {
		return fmt.Errorf("containerd socket %s is too long for a unix socket: choose a shorter --data-dir", s.socket)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("containerd dir: %w", err)
	}
	return os.WriteFile(filepath.Join(s.dir, "config.toml"), []byte(containerdConfig), 0o600)
}

// run starts containerd and starts it again whenever it exits, after a pause
// that grows while it keeps dying, until ctx ends; then it stops it with
// SIGTERM (SIGKILL 10 s later).
func (s *supervisor) run(ctx context.Context) {
	defer close(s.done)
	logFile, err := os.OpenFile(filepath.Join(s.dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.log.Error("containerd log file", "err", err)
		return
	}
	defer logFile.Close()
	pause := time.Second
	for {
		started := time.Now()
		err := s.runOnce(ctx, logFile)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			pause = time.Second
		}
		s.log.Error("containerd exited, restarting", "err", err, "log", logFile.Name(), "retry_in", pause.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

func (s *supervisor) runOnce(ctx context.Context, logFile *os.File) error {
	cmd := exec.Command("containerd", "--config", filepath.Join(s.dir, "config.toml"),
		"--root", filepath.Join(s.dir, "root"), "--state", filepath.Join(s.dir, "state"), "--address", s.socket)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a Ctrl-C on the terminal reaches keelson
	// only, which stops containerd after the agent; the death signal stops
	// it should keelson be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	s.log.Info("containerd started", "pid", cmd.Process.Pid, "socket", s.socket)
	go func() {
		if waitSocket(ctx, s.socket, exited) == nil {
			select {
			case <-s.ready:
			default:
				close(s.ready)
			}
		}
	}()
	select {
	case <-exited:
		return waitErr
	case <-ctx.Done():
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		s.log.Info("containerd stopped")
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	return waitErr
}

// waitSocket waits until something accepts connections on sock.
func waitSocket(ctx context.Context, sock string, exited <-chan struct{}) error {
	for {
		if answers(sock) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("containerd exited while starting")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// answers says whether something listens on a unix socket.
func answers(sock string) bool {
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
