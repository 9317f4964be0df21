package clusterdns

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// benchServerEnv, set to a CPU number, makes the test binary a cluster DNS
// server pinned to that CPU, for BenchmarkQuery to load from another one.
const benchServerEnv = "KEELSON_CLUSTERDNS_BENCH_SERVER_CPU"

const benchServices = 1000

// benchObjects are n services with cluster IPs, web-<i> in namespace ns-<i%10>.
func benchObjects(n int) []kruntime.Object {
	objs := make([]kruntime.Object, 0, n)
	for i := range n {
		ip := fmt.Sprintf("10.43.%d.%d", 1+i/250, 1+i%250)
		objs = append(objs, svc(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("web-%d", i), ip, withPort("http", corev1.ProtocolTCP, 80)))
	}
	return objs
}

// pinThreads sets the CPU affinity of every thread of this process; threads
// started later inherit it from the one that starts them.
func pinThreads(set *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d: %w", tid, err)
		}
	}
	return nil
}

// benchServerMain runs the server alone on one CPU, with GOMAXPROCS 1,
// prints its address and serves until its standard input closes.
func benchServerMain() int {
	cpu, err := strconv.Atoi(os.Getenv(benchServerEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", benchServerEnv, err)
		return 2
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := pinThreads(&set); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	runtime.GOMAXPROCS(1)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	factory := informers.NewSharedInformerFactory(fake.NewClientset(benchObjects(benchServices)...), 0)
	srv, err := New(Config{
		Services:       factory.Core().V1().Services().Informer(),
		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
		Addr:           "127.0.0.1:0", Upstreams: []string{}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if err := srv.Listen(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	// The index takes the informers' lists after they sync: until then the
	// zone is SERVFAIL, which is not what is measured.
	for !srv.ready() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ADDR", srv.Addr())
	err = srv.Serve(ctx)
	factory.Shutdown()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startBenchServer re-executes the test binary as a server on CPU 0.
func startBenchServer(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"=0", "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("bench server: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		b.Fatalf("bench server said %q: %v", line, err)
	}
	return addr
}

// benchQueries are packed queries: four A lookups of services for one of a
// name that does not exist.
func benchQueries(b *testing.B) [][]byte {
	var out [][]byte
	for i := range benchServices {
		name := fmt.Sprintf("web-%d.ns-%d.svc.cluster.local.", i, i%10)
		if i%5 == 4 {
			name = fmt.Sprintf("nope-%d.ns-%d.svc.cluster.local.", i, i%10)
		}
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		p, err := q.Pack()
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// BenchmarkQuery measures the server as pods would load it: a server process
// alone on CPU 0 (GOMAXPROCS 1) with 1,000 services in its index, and
// clients on CPU 1 asking over UDP, four lookups of services for one of a
// name that does not exist, with 8 or 32 queries in flight. It reports
// queries per second and the 99th percentile of the time to an answer.
func BenchmarkQuery(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two CPUs: the server on one, the clients on the other")
	}
	for _, inflight := range []int{8, 32} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) { benchQuery(b, inflight) })
	}
}

func benchQuery(b *testing.B, clients int) {
	addr := startBenchServer(b)
	queries := benchQueries(b)
	var set, orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		b.Fatal(err)
	}
	set.Set(1)
	if err := pinThreads(&set); err != nil {
		b.Fatal(err)
	}
	procs := runtime.GOMAXPROCS(1)
	defer func() {
		runtime.GOMAXPROCS(procs)
		if err := pinThreads(&orig); err != nil {
			b.Error(err)
		}
	}()
	var next, lost, wrong atomic.Int64
	lat := make([][]time.Duration, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			lat[c] = benchClient(b, addr, queries, &next, &lost, &wrong)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		b.Fatal("no answer came back")
	}
	if wrong.Load() > 0 {
		b.Fatalf("%d answers had the wrong rcode", wrong.Load())
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "qps")
	b.ReportMetric(float64(all[len(all)*99/100])/float64(time.Millisecond), "p99-ms")
	b.ReportMetric(float64(lost.Load()), "lost")
	b.ReportMetric(0, "ns/op")
}

// benchClient asks queries over one UDP socket, one at a time, until b.N
// have been taken from next, and returns the time each answer took. An
// answer lost on the way counts in lost after a second; one with the wrong
// rcode in wrong.
func benchClient(b *testing.B, addr string, queries [][]byte, next, lost, wrong *atomic.Int64) []time.Duration {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		b.Error(err)
		return nil
	}
	defer conn.Close()
	var out []time.Duration
	pkt := make([]byte, 512)
	buf := make([]byte, 4096)
	for {
		i := next.Add(1) - 1
		if i >= int64(b.N) {
			return out
		}
		q := queries[int(i)%len(queries)]
		n := copy(pkt, q)
		id := uint16(i)
		binary.BigEndian.PutUint16(pkt, id)
		t0 := time.Now()
		if _, err := conn.Write(pkt[:n]); err != nil {
			lost.Add(1)
			continue
		}
		_ = conn.SetReadDeadline(t0.Add(time.Second))
		for {
			m, err := conn.Read(buf)
			if err != nil {
				lost.Add(1)
				break
			}
			if m < 12 || binary.BigEndian.Uint16(buf) != id {
				continue // a late answer to a query counted lost
			}
			out = append(out, time.Since(t0))
			want := dns.RcodeSuccess
			if (int(i)%len(queries))%5 == 4 {
				want = dns.RcodeNameError
			}
			if int(buf[3]&0xF) != want {
				wrong.Add(1)
			}
			break
		}
	}
}

// BenchmarkResolve measures the query path alone (parse, look up, pack) for
// indexes of different sizes: the time per query must not grow with the
// number of services.
func BenchmarkResolve(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			f := startServer(b, Config{}, benchObjects(n)...)
			var pkts [][]byte
			for i := range 1000 {
				j := i * n / 1000
				q := new(dns.Msg)
				q.SetQuestion(fmt.Sprintf("web-%d.ns-%d.svc.cluster.local.", j, j%10), dns.TypeA)
				p, err := q.Pack()
				if err != nil {
					b.Fatal(err)
				}
				pkts = append(pkts, p)
			}
			var answered int
			c := client{call: func(out []byte) error {
				if out[3]&0xF == dns.RcodeSuccess {
					answered++
				}
				return nil
			}}
			buf := make([]byte, dns.MaxMsgSize)
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f.srv.handle(ctx, pkts[i%len(pkts)], c, buf, time.Now())
				i++
			}
			if answered != i {
				b.Fatalf("%d of %d queries answered NOERROR", answered, i)
			}
		})
	}
}
