package ingress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkProxyPinned is BenchmarkProxy with the proxy on a core of its
// own, as on a node, where the clients are elsewhere: the benchmark process
// (client and backend) runs on CPU 0, the proxy in a process of its own on
// CPU 1. direct: the client asks the backend, CPU 1 idles; ingress:
// keelson's proxy, the test binary re-executed as TestHelperIngressProxy;
// nginx: NGINX with one worker (worker_processes 1), otherwise configured
// as for BenchmarkProxy. It needs two CPUs and skips with fewer. Besides
// load's figures (cpu-µs/op counts the benchmark process and the proxy's)
// it reports proxy-cpu-µs/op, the proxy's own CPU time per request. The
// "-2" its names end with is GOMAXPROCS when it starts; the benchmark
// process runs with 1.
//
// Pinning: the proxies are started under `taskset -c 1` (util-linux), which
// sets the affinity and execs them, so every thread they ever create
// inherits it (a Go proxy then starts with GOMAXPROCS 1). The benchmark
// process pins itself, so a plain `go test -bench` does: it sets
// GOMAXPROCS to 1 and the affinity of every thread in /proc/self/task to
// CPU 0 (until a pass over the list finds no thread it has not pinned;
// threads created later inherit it from a pinned thread), checks
// Cpus_allowed_list of every task, its own and the proxy's, before and
// after each measurement, and restores both at the end.
func BenchmarkProxyPinned(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skipf("needs 2 CPUs, have %d", runtime.NumCPU())
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		b.Skip("taskset (util-linux) not found: ", err)
	}
	pinSelf(b, 0)

	ln := benchBackend(b)
	backend := ln.Addr().String()
	const host = "bench.example.com"
	// measure runs the load against addr and checks, after it, that the
	// benchmark process is still on CPU 0 and the proxy (pid, with its
	// children; 0 for none) on CPU 1. Besides load's figures it reports
	// the proxy's own CPU time per request, proxy-cpu-µs/op.
	measure := func(b *testing.B, addr string, pid int) {
		var others []func() time.Duration
		var cpu0 time.Duration
		if pid != 0 {
			checkPinned(b, pid, true, "1")
			others = append(others, func() time.Duration { return treeCPU(pid) })
			cpu0 = treeCPU(pid)
		}
		load(b, addr, host, len(benchBody), benchConns, others...)
		if pid != 0 && b.N > 0 {
			b.ReportMetric(float64((treeCPU(pid)-cpu0).Microseconds())/float64(b.N), "proxy-cpu-µs/op")
		}
		checkPinned(b, os.Getpid(), false, "0")
		pinnedInfo.Do(func() {
			threads, _ := filepath.Glob("/proc/self/task/*")
			b.Logf("benchmark process: GOMAXPROCS %d, its %d threads allowed on CPU 0 only (Cpus_allowed_list)",
				runtime.GOMAXPROCS(0), len(threads))
		})
		if pid != 0 {
			checkPinned(b, pid, true, "1")
		}
	}

	b.Run("direct", func(b *testing.B) {
		measure(b, backend, 0)
	})
	b.Run("ingress", func(b *testing.B) {
		addr, pid := startHelperProxy(b, backend, "1")
		measure(b, addr, pid)
	})
	b.Run("nginx", func(b *testing.B) {
		addr, pid := startNginx(b, backend, host, 1, "1")
		measure(b, addr, pid)
	})
}

var pinnedInfo sync.Once

// pinSelf pins this process, every thread of it, to cpu and sets GOMAXPROCS
// to 1; b.Cleanup restores the affinity and GOMAXPROCS it found.
func pinSelf(b *testing.B, cpu int) {
	b.Helper()
	var was, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		b.Fatal("sched_getaffinity: ", err)
	}
	set.Set(cpu)
	procs := runtime.GOMAXPROCS(1)
	b.Cleanup(func() {
		if err := setAffinityAll(&was); err != nil {
			b.Error("restoring the affinity: ", err)
		}
		runtime.GOMAXPROCS(procs)
	})
	if err := setAffinityAll(&set); err != nil {
		b.Fatal(err)
	}
	checkPinned(b, os.Getpid(), false, strconv.Itoa(cpu))
}

// setAffinityAll sets the affinity of every thread of this process.
func setAffinityAll(set *unix.CPUSet) error {
	done := map[int]bool{}
	for range 100 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh++
			if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setaffinity of thread %d: %w", tid, err)
			}
			done[tid] = true
		}
		if fresh == 0 {
			return nil
		}
	}
	return errors.New("sched_setaffinity: threads keep appearing")
}

// checkPinned fails b unless every thread of pid, and of its children when
// asked, is allowed on exactly cpus (Cpus_allowed_list, e.g. "1").
func checkPinned(b *testing.B, pid int, andChildren bool, cpus string) {
	b.Helper()
	pids := []string{strconv.Itoa(pid)}
	if andChildren {
		pids = append(pids, children(pid)...)
	}
	lists := cpusAllowed(pids...)
	if len(lists) == 0 {
		b.Fatalf("no Cpus_allowed_list for pid %d", pid)
	}
	for task, l := range lists {
		if l != cpus {
			b.Fatalf("thread %s of pid %d is allowed on CPUs %q, want %q", task, pid, l, cpus)
		}
	}
}

// cpusAllowed is the Cpus_allowed_list of every thread of pids, by pid/tid.
func cpusAllowed(pids ...string) map[string]string {
	out := map[string]string{}
	for _, p := range pids {
		statuses, _ := filepath.Glob("/proc/" + p + "/task/*/status")
		for _, s := range statuses {
			data, err := os.ReadFile(s)
			if err != nil {
				continue // the thread has exited
			}
			for line := range strings.Lines(string(data)) {
				if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
					out[p+"/"+filepath.Base(filepath.Dir(s))] = strings.TrimSpace(v)
				}
			}
		}
	}
	return out
}

// The helper process: the test binary run with helperBackendEnv set serves
// keelson's proxy, and nothing else, in TestHelperIngressProxy.
const (
	// helperBackendEnv is the backend's "host:port": the one endpoint of
	// the Service an Ingress of helperHost routes to.
	helperBackendEnv = "KEELSON_TEST_INGRESS_BACKEND"
	// helperListenEnv is the proxy's plain HTTP address, 127.0.0.1:0 when
	// unset.
	helperListenEnv = "KEELSON_TEST_INGRESS_LISTEN"
	helperHost      = "bench.example.com"
	// helperReady starts the line the helper prints once it serves:
	// helperReady ADDR GOMAXPROCS.
	helperReady = "keelson-ingress-proxy"
)

// TestHelperIngressProxy is not a test: run by startHelperProxy, with
// helperBackendEnv set, it serves keelson's proxy in front of that backend,
// with informers of a fake API, prints its address and serves until
// SIGTERM or SIGINT. Without helperBackendEnv it returns at once.
func TestHelperIngressProxy(t *testing.T) {
	backend := os.Getenv(helperBackendEnv)
	if backend == "" {
		return
	}
	h, p, err := net.SplitHostPort(backend)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	listen := os.Getenv(helperListenEnv)
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	e := newEnv(t, service("bench"), slice("bench-1", "bench", int32(port), true, h),
		ingress("bench", 0, rule(helperHost, prefix("/", "bench"))))
	px := e.proxy(func(c *Config) {
		c.Logger, c.Event, c.HTTPAddr, c.HTTPSAddr = discard(), nil, listen, ""
	})
	httpAddr, _ := px.Addrs()
	fmt.Printf("%s %s %d\n", helperReady, httpAddr, runtime.GOMAXPROCS(0))
	<-ctx.Done()
}

// startHelperProxy runs keelson's proxy in front of backend in a process of
// its own, the test binary re-executed as TestHelperIngressProxy, pinned to
// cpus with taskset, and returns its address and pid once it serves.
// b.Cleanup stops it (SIGTERM, SIGKILL after 10s) and waits for it.
func startHelperProxy(b *testing.B, backend, cpus string) (addr string, pid int) {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command("taskset", "-c", cpus, exe, "-test.run=^TestHelperIngressProxy$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), helperBackendEnv+"="+backend, helperListenEnv+"=127.0.0.1:0")
	out := &lineWriter{line: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	// Should the benchmark die without its cleanup, the proxy dies too
	// (taskset execs it, which keeps the signal).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal("start the proxy: ", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	var line string
	select {
	case line = <-out.line:
	case <-exited:
		b.Fatalf("the proxy exited before serving:\n%s", out)
	case <-time.After(time.Minute):
		b.Fatalf("the proxy not serving after a minute:\n%s", out)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != helperReady {
		b.Fatalf("the proxy said %q, want %q ADDR GOMAXPROCS:\n%s", line, helperReady, out)
	}
	helperInfo.Do(func() {
		b.Logf("keelson proxy: pid %d, taskset -c %s, GOMAXPROCS %s", cmd.Process.Pid, cpus, f[2])
	})
	return f[1], cmd.Process.Pid
}

var helperInfo sync.Once

// lineWriter keeps what a process writes and sends its first line that
// starts with helperReady.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
	line chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		for l := range strings.Lines(w.buf.String()) {
			if strings.HasPrefix(l, helperReady) && strings.HasSuffix(l, "\n") {
				w.sent = true
				w.line <- strings.TrimSpace(l)
				break
			}
		}
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
