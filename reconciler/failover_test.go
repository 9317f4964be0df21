package reconciler

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
)

// serverEnv makes the test binary act as a keelson server's controller half
// (see runTestServer) instead of running tests.
const serverEnv = "KEELSON_RECONCILER_TEST_SERVER"

// runTestServer runs Run against the etcd and prefix given in the
// environment, printing "leading=true|false" lines, until stdin closes.
func runTestServer() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(os.Getenv(serverEnv+"_ETCD"), ","),
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	st := store.New(cli, os.Getenv(serverEnv+"_PREFIX"), testLog())
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	opts := testOptions()
	opts.LeaderElection = LeaderElection{TTL: 2 * time.Second, RetryPeriod: 50 * time.Millisecond, Identity: os.Getenv(serverEnv)}
	opts.OnLeading = func(on bool) { fmt.Printf("leading=%v\n", on) }
	Run(ctx, st, testLog(), opts)
	os.Exit(0)
}

type testServer struct {
	cmd   *exec.Cmd
	lines chan string
}

func startTestServer(t *testing.T, id, prefix string, endpoints []string) *testServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+id, serverEnv+"_ETCD="+strings.Join(endpoints, ","), serverEnv+"_PREFIX="+prefix)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &testServer{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return s
}

// waitLeading waits for the server to report that it runs the controllers.
func (s *testServer) waitLeading(t *testing.T, who string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("server %s exited before leading", who)
			}
			if l == "leading=true" {
				return
			}
		case <-timeout:
			t.Fatalf("server %s never became leader", who)
		}
	}
}

// leadingNow reports whether the server has said it leads, without waiting.
func (s *testServer) leadingNow() bool {
	for {
		select {
		case l := <-s.lines:
			if l == "leading=true" {
				return true
			}
		default:
			return false
		}
	}
}

// TestLeaderFailoverProcesses runs two servers as processes on one etcd, kills
// the leader with SIGKILL, and checks that the other takes over and keeps the
// ReplicaSet's pods.
func TestLeaderFailoverProcesses(t *testing.T) {
	prefix := fmt.Sprintf("/keelson-test/failover-proc-%d/registry", time.Now().UnixNano())
	agent, _ := sharedStore(t, prefix)
	startFakeNode(t, agent, fakenode.Options{})
	env := &testEnv{t: t, st: agent}
	endpoints := agent.Endpoints()

	a := startTestServer(t, "a", prefix, endpoints)
	a.waitLeading(t, "a")
	b := startTestServer(t, "b", prefix, endpoints)
	rs := newRS("web", 2)
	if err := agent.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	rs = waitRS(t, env, "web", 2)
	if b.leadingNow() {
		t.Fatal("b leads while a is alive")
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	b.waitLeading(t, "b")
	rs.Spec.Replicas = ptr.To(int32(4))
	if err := env.update(rs); err != nil {
		t.Fatal(err)
	}
	waitRS(t, env, "web", 4)
}
