package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/encryption"
	"github.com/keelson/keelson/store/etcdtest"
)

// binary is the keelson binary built once for the tests that run it as a
// process, so signals and exit codes are the real ones.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keelson-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "keelson")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build keelson: %v\n%s", err, out)
		os.Exit(1)
	}
	// Beside keelson, as installed: the containers' logging binary.
	if _, err := containerdtest.BuildLogger(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := containerdtest.Clean(m).Run() // nothing a test starts may outlive it
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd *exec.Cmd
	out *syncBuffer
	// done is closed once the process has exited and its output is read, so
	// that any number of waits see it.
	done chan struct{}
}

func start(t testing.TB, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binary, isolate(t, args)...))
}

// startCmd starts cmd with its output kept, and kills it at the end of the
// test.
func startCmd(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t testing.TB) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("keelson did not stop within 30s of SIGTERM:\n%s", p.out)
	}
	return p.cmd.ProcessState.ExitCode()
}

// wait returns the exit code of a process expected to exit by itself.
func (p *proc) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("keelson did not exit within 60s:\n%s", p.out)
	}
	return p.cmd.ProcessState.ExitCode()
}

func freeAddr(t testing.TB) string {
	return strings.TrimPrefix(etcdtest.FreeURL(t), "http://")
}

// insecureClient reaches the server's HTTPS port without knowing its CA,
// which is generated on first start; /readyz needs no trust.
var insecureClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// readyz polls /readyz until it answers want or the deadline passes, and
// returns the last body.
func readyz(t testing.TB, p *proc, addr string, want int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := insecureClient.Get("https://" + addr + "/readyz?verbose")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
			if resp.StatusCode == want {
				return string(b)
			}
		}
		select {
		case <-p.done:
			t.Fatalf("keelson exited while waiting for /readyz %d:\n%s", want, p.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("/readyz never answered %d; last: %s\n%s", want, last, p.out)
	return ""
}

func TestServerRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	api, client, peer := freeAddr(t), etcdtest.FreeURL(t), etcdtest.FreeURL(t)
	args := []string{"server", "--data-dir", dir, "--listen", api, "--etcd-listen-client", client, "--etcd-listen-peer", peer}

	p := start(t, args...)
	readyz(t, p, api, http.StatusOK)
	var created []string
	withStore(t, client, func(s *store.Store) {
		for i := range 20 {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p%d", i)}}
			if err := s.Create(t.Context(), pod); err != nil {
				t.Fatal(err)
			}
			created = append(created, string(pod.UID))
		}
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.out)
	}

	p = start(t, args...)
	readyz(t, p, api, http.StatusOK)
	withStore(t, client, func(s *store.Store) {
		for i, uid := range created {
			var pod corev1.Pod
			if err := s.Get(t.Context(), "default", fmt.Sprintf("p%d", i), &pod); err != nil {
				t.Fatalf("after restart: %v", err)
			}
			if string(pod.UID) != uid {
				t.Fatalf("after restart p%d has uid %s, want %s", i, pod.UID, uid)
			}
		}
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.out)
	}
}

func withStore(t testing.TB, endpoint string, f func(*store.Store)) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(cli, "", nil)
	defer s.Close()
	f(s)
}

func TestServerUnreachableEtcd(t *testing.T) {
	api, etcdURL := freeAddr(t), etcdtest.FreeURL(t) // nothing listens there
	p := start(t, "server", "--data-dir", t.TempDir(), "--listen", api, "--etcd-endpoints", etcdURL)
	body := readyz(t, p, api, http.StatusServiceUnavailable)
	if !strings.Contains(body, "[-]etcd failed") {
		t.Fatalf("/readyz body does not name etcd: %s", body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.out.String(), "etcd not reachable") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no repeated retry lines in the log:\n%s", p.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(p.out.String(), etcdURL) {
		t.Fatalf("log does not say which endpoint was tried:\n%s", p.out)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.out)
	}
}

func TestServerStartupErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"api port taken", []string{"--data-dir", t.TempDir(), "--listen", taken.Addr().String()}, "API address " + taken.Addr().String() + " is taken"},
		{"etcd port taken", []string{"--data-dir", t.TempDir(), "--listen", freeAddr(t), "--etcd-listen-client", "http://" + taken.Addr().String(), "--etcd-listen-peer", etcdtest.FreeURL(t)}, "a port is taken"},
		{"data dir not writable", []string{"--data-dir", filepath.Join(file, "sub"), "--listen", freeAddr(t)}, "is not writable"},
		{"bad log format", []string{"--log-format", "xml"}, `--log-format "xml"`},
		{"bad on-failure", []string{"--data-dir", t.TempDir(), "--listen", freeAddr(t), "--repo", t.TempDir(), "--on-failure", "retry"}, `--on-failure "retry": want rollback or none`},
		{"unknown cloud provider", []string{"--data-dir", t.TempDir(), "--listen", freeAddr(t), "--cloud-provider", "nope"}, `unknown provider "nope": registered are local, none`},
		{"bad load balancer pool", []string{"--data-dir", t.TempDir(), "--listen", freeAddr(t), "--lb-pool", "10.99.0.9-10.99.0.2"}, `load balancer pool entry "10.99.0.9-10.99.0.2": the range ends before it starts`},
		{"rollback without wait", []string{"--data-dir", t.TempDir(), "--listen", freeAddr(t), "--repo", t.TempDir(), "--on-failure", "rollback"}, "onFailure rollback needs wait"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, append([]string{"server"}, tc.args...)...)
			if code := p.wait(t); code != 1 {
				t.Fatalf("exit code %d, want 1:\n%s", code, p.out)
			}
			lines := strings.Split(strings.TrimSpace(p.out.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "keelson: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("last line %q does not say %q:\n%s", last, tc.want, p.out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.CommandContext(context.Background(), binary, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "keelson ") || !strings.Contains(string(out), "commit") {
		t.Fatalf("keelson version: %v %q", err, out)
	}
}

// Servers on one etcd must share their encryption keys: a second server
// that made a key of its own refuses to start, naming the key it lacks;
// one given a copy of the first's file starts.
func TestServersShareEncryptionKeys(t *testing.T) {
	etcd := strings.Join(etcdtest.External(t), ",")
	first, firstData := freeAddr(t), t.TempDir()
	p1 := start(t, "server", "--data-dir", firstData, "--listen", first, "--etcd-endpoints", etcd)
	readyz(t, p1, first, http.StatusOK)
	keys, err := os.ReadFile(filepath.Join(firstData, "encryption-keys.yaml"))
	if err != nil {
		t.Fatalf("the first server made no key file: %v", err)
	}

	other := t.TempDir()
	p2 := start(t, "server", "--data-dir", other, "--listen", freeAddr(t), "--etcd-endpoints", etcd)
	if code := p2.wait(t); code != 1 {
		t.Fatalf("a server with another key: exit code %d, want 1:\n%s", code, p2.out)
	}
	firstKeys, err := encryption.Load(filepath.Join(firstData, "encryption-keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("etcd holds values encrypted with key %q, not in %s", firstKeys.Primary(), filepath.Join(other, "encryption-keys.yaml"))
	if !strings.Contains(p2.out.String(), want) {
		t.Fatalf("a server with another key does not say %q:\n%s", want, p2.out)
	}

	copied, addr := t.TempDir(), freeAddr(t)
	if err := os.WriteFile(filepath.Join(copied, "encryption-keys.yaml"), keys, 0o600); err != nil {
		t.Fatal(err)
	}
	p3 := start(t, "server", "--data-dir", copied, "--listen", addr, "--etcd-endpoints", etcd)
	readyz(t, p3, addr, http.StatusOK)
	for _, p := range []*proc{p3, p1} {
		if code := p.stop(t); code != 0 {
			t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.out)
		}
	}
}
