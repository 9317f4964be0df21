package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/network"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// node is one keelson node: an agent with real containerd and CNI, talking to
// an in-process API over HTTP as system:node:<name>.
type node struct {
	store *store.Store
	rt    *containerd.Runtime
	ctd   *containerdtest.Daemon
	// calls counts the requests the node makes to containerd.
	calls  *atomic.Int64
	name   string
	api    *gate
	agent  *agent.Agent
	admin  kubernetes.Interface // a client of the API as an admin user
	apiURL string
	root   string // the agent's data dir
}

// gate stands in front of the API; closed, it cuts the requests in flight
// (watches among them) and answers every new one with 503, as an API that is
// down or unreachable does for the agent.
type gate struct {
	mu     sync.Mutex
	closed bool
	cut    context.CancelFunc
	epoch  context.Context
	next   http.Handler
	// serving counts the requests being served, so that closing waits for
	// them: a watch that had not yet seen its cut could otherwise still
	// deliver an event of a write made after the gate closed.
	serving sync.WaitGroup
	// asked counts the requests let through, by method and path, with
	// " watch" after those that watch.
	asked map[string]int
}

// total is the number of requests the gate let through.
func (g *gate) total() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.asked {
		n += c
	}
	return n
}

// requests returns how many requests of method for path the gate let
// through; watch counts the watches instead of the others.
func (g *gate) requests(method, path string, watch bool) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if watch {
		path += " watch"
	}
	return g.asked[method+" "+path]
}

func newGate(next http.Handler) *gate {
	g := &gate{next: next}
	g.epoch, g.cut = context.WithCancel(context.Background())
	return g
}

// set opens or closes the gate; closing returns once no request is being
// served.
func (g *gate) set(closed bool) {
	g.mu.Lock()
	g.closed = closed
	if !closed {
		g.epoch, g.cut = context.WithCancel(context.Background())
		g.mu.Unlock()
		return
	}
	g.cut()
	g.mu.Unlock()
	g.serving.Wait()
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	closed, epoch := g.closed, g.epoch
	if !closed {
		g.serving.Add(1)
		key := r.Method + " " + r.URL.Path
		if r.URL.Query().Get("watch") == "true" {
			key += " watch"
		}
		if g.asked == nil {
			g.asked = map[string]int{}
		}
		g.asked[key]++
	}
	g.mu.Unlock()
	if closed {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	defer g.serving.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(epoch, cancel)
	defer stop()
	g.next.ServeHTTP(w, r.WithContext(ctx))
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startNode(t testing.TB, name, podCIDR string, tune ...func(*agent.Config)) *node {
	t.Helper()
	st := etcdtest.NewStore(t)
	tokens, err := apiserver.ParseTokens(strings.NewReader(fmt.Sprintf(
		"node-token,system:node:%s,uid-node,\"system:nodes\"\nadmin-token,admin,uid-admin,\"system:masters\"\n", name)))
	if err != nil {
		t.Fatal(err)
	}
	srv := apiserver.New(apiserver.Config{Store: st, Tokens: tokens, Logger: quietLogger()})
	g := newGate(srv.Handler())
	ts := httptest.NewServer(g)
	t.Cleanup(ts.Close)
	client, err := agent.NewClient([]string{ts.URL}, "node-token", "", nil)
	if err != nil {
		t.Fatal(err)
	}

	calls := &atomic.Int64{}
	rt, ctd := containerdtest.NewRuntime(t, containerd.WithLogDriver(logger), containerd.WithCallCount(calls))
	version, err := rt.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	bridge := fmt.Sprintf("ke%d", os.Getpid()%100000)
	n, err := network.New(network.Config{PodCIDR: podCIDR, Bridge: bridge, DataDir: filepath.Join(root, "cni"), NoMasquerade: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	agentAddr := strings.TrimPrefix(etcdtest.FreeURL(t), "http://")
	_, portStr, _ := net.SplitHostPort(agentAddr)
	port, _ := strconv.Atoi(portStr)
	cfg := agent.Config{
		Port:   int32(port),
		Client: client, Runtime: rt, RuntimeVersion: "containerd://" + version, Network: n,
		NodeName: name, HostIP: "127.0.0.1", PodCIDR: podCIDR, RootDir: root,
		Resync: 200 * time.Millisecond, LeaseDuration: 4 * time.Second, StatsInterval: 200 * time.Millisecond,
		BackoffBase: 200 * time.Millisecond, Logger: quietLogger(),
	}
	for _, f := range tune {
		f(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	go agent.Serve(ctx, agentAddr, name, a.Handler("node-token"))
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		// What the test left running goes with the private containerd.
		cs, _ := rt.List(context.Background())
		for _, c := range cs {
			rt.Remove(context.Background(), c.ID)
		}
		nss, _ := filepath.Glob(filepath.Join(root, "netns", "*"))
		for _, ns := range nss {
			network.RemoveNetNS(ns)
		}
	})
	admin, err := agent.NewClient([]string{ts.URL}, "admin-token", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &node{store: st, rt: rt, ctd: ctd, calls: calls, name: name, api: g, agent: a, admin: admin, apiURL: ts.URL, root: root}
}

// eventually polls f until it returns "" (satisfied) or 30s pass.
func eventually(t testing.TB, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		why := f()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sleeperPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{NodeName: "node-1", TerminationGracePeriodSeconds: ptr.To[int64](0), Containers: []corev1.Container{{
			Name: "main", Image: ociarchive.BusyboxRef, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
		}}},
	}
}

func waitRunning(t testing.TB, n *node, name string) {
	t.Helper()
	eventually(t, name+" running", func() string {
		var p corev1.Pod
		if err := n.store.Get(t.Context(), "default", name, &p); err != nil {
			return err.Error()
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Sprintf("phase %q", p.Status.Phase)
		}
		return ""
	})
}
