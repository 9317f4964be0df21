package ingress

import (
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchConns is the number of concurrent keep-alive connections, each with
// one request at a time.
const benchConns = 64

// BenchmarkProxy: requests per second and p99 latency of a small response,
// 64 connections, straight to the backend (direct), through the proxy
// (ingress) and through NGINX configured as ingress-nginx does (nginx), in
// the same run. Client, proxy and backend share the machine;
// BenchmarkProxyPinned gives the proxy a core of its own.
func BenchmarkProxy(b *testing.B) {
	benchProxies(b, benchConns)
}

// BenchmarkProxyOneConn: the same over one connection, one request at a
// time: the latency the proxy adds when nothing queues.
func BenchmarkProxyOneConn(b *testing.B) {
	benchProxies(b, 1)
}

// benchBody is what the benchmarks' backend answers.
var benchBody = strings.Repeat("k", 100)

// benchBackend starts the benchmarks' backend on 127.0.0.1 and returns its
// listener; b.Cleanup closes it.
func benchBackend(b *testing.B) net.Listener {
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, benchBody)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = backend.Serve(ln) }()
	b.Cleanup(func() { _ = backend.Close() })
	return ln
}

func benchProxies(b *testing.B, conns int) {
	body := benchBody
	ln := benchBackend(b)
	port := int32(ln.Addr().(*net.TCPAddr).Port)

	b.Run("direct", func(b *testing.B) {
		load(b, ln.Addr().String(), "bench.example.com", len(body), conns)
	})
	b.Run("ingress", func(b *testing.B) {
		e := newEnv(b, service("bench"), slice("bench-1", "bench", port, true, "127.0.0.1"),
			ingress("bench", 0, rule("bench.example.com", prefix("/", "bench"))))
		p := e.proxy(func(c *Config) {
			c.Logger, c.Event, c.HTTPSAddr = discard(), nil, ""
		})
		httpAddr, _ := p.Addrs()
		load(b, httpAddr.String(), "bench.example.com", len(body), conns)
	})
	b.Run("nginx", func(b *testing.B) {
		addr, pid := startNginx(b, ln.Addr().String(), "bench.example.com", 0, "")
		load(b, addr, "bench.example.com", len(body), conns, func() time.Duration { return treeCPU(pid) })
	})
}

// load sends b.N GET requests to addr from conns goroutines, each on its
// own keep-alive connection, and reports req/s, the p99 latency and the CPU
// time a request took: of this process, which holds the client, the
// backend and keelson's proxy, plus that of the processes others measure.
func load(b *testing.B, addr, host string, size, conns int, others ...func() time.Duration) {
	cpu := func() time.Duration {
		d := processCPU()
		for _, o := range others {
			d += o()
		}
		return d
	}
	tr := &http.Transport{
		MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, MaxIdleConns: conns,
		DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	var next atomic.Int64
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cpu()
	start := time.Now()
	for g := range conns {
		lat[g] = make([]time.Duration, 0, b.N/conns+1)
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			if err != nil {
				b.Error(err)
				return
			}
			req.Host = host
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				resp, err := tr.RoundTrip(req)
				if err != nil {
					b.Error(err)
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || int(n) != size {
					b.Errorf("%d with %d bytes, want 200 with %d", resp.StatusCode, n, size)
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	used := cpu() - cpu0
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	p99 := all[min(len(all)-1, len(all)*99/100)]
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(used.Microseconds())/float64(len(all)), "cpu-µs/op")
}

// processCPU is the CPU time, user and system, this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
