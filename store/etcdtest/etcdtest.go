package etcdtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/keelson/keelson/store"
)

var shared struct {
	once sync.Once
	dir  string
	e    *store.Embedded
	err  error
}

// Main runs the package's tests and then stops the shared embedded etcd and
// removes its data. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Wrap(m).Run()) }

// Runner is what a TestMain runs: *testing.M, or a wrapper of one.
type Runner interface{ Run() int }

// Wrap is Main for a TestMain that wraps the run further: its Run runs the
// tests, stops the shared embedded etcd, removes its data, and returns the
// tests' exit code.
func Wrap(m Runner) Runner { return withEtcd{m} }

type withEtcd struct{ m Runner }

func (w withEtcd) Run() int {
	code := w.m.Run()
	if shared.e != nil {
		shared.e.Close()
		os.RemoveAll(shared.dir)
	}
	return code
}

// FreeURL returns an http URL on a loopback port from FreePort.
func FreeURL(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
}

// Embedded returns the endpoints of the package's shared embedded etcd,
// starting it on first use on a temp dir and free loopback ports.
func Embedded(t testing.TB) []string {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "keelson-etcdtest-")
		if shared.err != nil {
			return
		}
		cfg := store.EmbeddedConfig{ClientURL: FreeURL(t), PeerURL: FreeURL(t)}
		shared.e, shared.err = store.StartEmbedded(context.Background(), shared.dir, cfg, quiet())
	})
	if shared.err != nil {
		t.Fatalf("start embedded etcd: %v", shared.err)
	}
	return shared.e.ClientURLs()
}

// NewStore returns a store on the shared embedded etcd with a key prefix of its
// own, so tests do not see each other's objects. It is closed at cleanup.
func NewStore(t testing.TB) *store.Store {
	t.Helper()
	return NewStoreAt(t, Embedded(t))
}

// NewStoreAt returns a store on the given etcd endpoints with a key prefix of
// its own, closed at cleanup.
func NewStoreAt(t testing.TB, endpoints []string) *store.Store {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	prefix := fmt.Sprintf("/keelson-test/%s-%d/registry", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
	s := store.New(cli, prefix, quiet())
	t.Cleanup(func() { s.Close() })
	return s
}

// External starts a separate etcd process from the etcd binary on the PATH, on
// free loopback ports and a temp data dir, and returns its client endpoints. It
// is killed at cleanup. Without an etcd binary the test is skipped, unless
// KEELSON_REQUIRE_ETCD=1, where it fails.
func External(t testing.TB) []string {
	t.Helper()
	return startExternal(t, nil)
}

// ExternalTLS is External with client TLS required: etcd serves https and
// accepts only clients with a certificate signed by the returned CA.
func ExternalTLS(t testing.TB) ([]string, TLSFiles) {
	t.Helper()
	f := NewTLSFiles(t)
	return startExternal(t, &f), f
}

func startExternal(t testing.TB, tlsFiles *TLSFiles) []string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("KEELSON_REQUIRE_ETCD") == "1" {
			t.Fatalf("etcd binary not found on PATH and KEELSON_REQUIRE_ETCD=1: install Debian's etcd-server")
		}
		t.Skip("etcd binary not found on PATH: install Debian's etcd-server to run the external-etcd tests")
	}
	dir := t.TempDir()
	client, peer := FreeURL(t), FreeURL(t)
	args := []string{"--name", "external", "--data-dir", filepath.Join(dir, "data"),
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "external=" + peer, "--log-level", "error",
		"--max-txn-ops", "16384", "--max-request-bytes", fmt.Sprint(64 << 20)}
	if tlsFiles != nil {
		client = "https://" + strings.TrimPrefix(client, "http://")
		args = append(args, "--cert-file", tlsFiles.ServerCert, "--key-file", tlsFiles.ServerKey,
			"--trusted-ca-file", tlsFiles.CA, "--client-cert-auth")
	}
	args = append(args, "--listen-client-urls", client, "--advertise-client-urls", client)
	cmd := exec.Command(bin, args...)
	logFile, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
	})
	if err := waitReady(client, tlsFiles, 30*time.Second); err != nil {
		out, _ := os.ReadFile(logFile.Name())
		t.Fatalf("external etcd at %s: %v\n%s", client, err, out)
	}
	return []string{client}
}

func waitReady(endpoint string, tlsFiles *TLSFiles, timeout time.Duration) error {
	cfg := clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()}
	if tlsFiles != nil {
		info := transport.TLSInfo{CertFile: tlsFiles.ClientCert, KeyFile: tlsFiles.ClientKey, TrustedCAFile: tlsFiles.CA}
		var err error
		if cfg.TLS, err = info.ClientConfig(); err != nil {
			return err
		}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "/health-probe")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
