package clusterdns

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// floodPackets are what the flood sends, in turn: names of the zone that
// exist and that do not, names to forward, and garbage.
func floodPackets(t *testing.T) [][]byte {
	var out [][]byte
	for i := range 64 {
		var name string
		switch i % 4 {
		case 0:
			name = "web.default.svc.cluster.local."
		case 1:
			name = fmt.Sprintf("nope-%d.default.svc.cluster.local.", i)
		case 2:
			name = fmt.Sprintf("host-%d.example.", i)
		case 3:
			out = append(out, []byte(fmt.Sprintf("\x00\x01garbage %d", i)))
			continue
		}
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		p, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestFlood sends UDP queries as fast as four senders can for a few seconds
// (over 50,000 a second on an idle machine), with forwarded names going to
// an upstream that never answers, while holding more TCP connections open
// than the server allows. Goroutines and heap must stay under fixed bounds,
// and the server must answer normally afterwards.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of flood")
	}
	hole := blackHole(t)
	f := startServer(t, Config{Upstreams: []string{hole.LocalAddr().String()}, ForwardTimeout: time.Second, HealthInterval: time.Hour}, zoneObjects()...)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseGoroutines, baseHeap := runtime.NumGoroutine(), ms.HeapInuse

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range maxTCPConns + 100 {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	sent, elapsed, maxGoroutines, maxHeap := flood(t, f.addr, floodPackets(t), baseGoroutines, baseHeap)
	t.Logf("sent %d packets in %v (%.0f/s); goroutines %d → at most %d; heap in use %d MiB → at most %d MiB",
		sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(),
		baseGoroutines, maxGoroutines, baseHeap>>20, maxHeap>>20)

	// The bound: readers, forwarded queries in flight and TCP connections
	// are each fixed; 4 senders, the sampler and the runtime's own make the
	// slack.
	if limit := baseGoroutines + udpWorkers + maxForwarding + maxTCPConns + 32; maxGoroutines > limit {
		t.Errorf("%d goroutines during the flood, bound %d", maxGoroutines, limit)
	}
	if limit := baseHeap + 64<<20; maxHeap > limit {
		t.Errorf("heap in use reached %d MiB during the flood, bound %d MiB", maxHeap>>20, limit>>20)
	}
	if n := f.counter(t, "keelson_clusterdns_dropped_total", map[string]string{"reason": dropTCPLimit}); n < 100 {
		t.Errorf("%v connections over the limit were closed, want at least 100", n)
	}
	if n := f.counter(t, "keelson_clusterdns_forwarded_total", map[string]string{"result": "overflow"}) +
		f.counter(t, "keelson_clusterdns_forwarded_total", map[string]string{"result": "down"}); n == 0 {
		t.Error("no forwarded query was turned away: the bound on forwarding was never reached")
	}
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	for _, network := range []string{"udp", "tcp"} {
		eventually(t, func() error {
			r, err := f.tryAsk(network, "web.default.svc.cluster.local.", dns.TypeA, 0)
			if err != nil {
				return err
			}
			if len(r.Answer) != 1 {
				return fmt.Errorf("%s after the flood: %s %v", network, rcodeOf(r), r.Answer)
			}
			return nil
		})
	}
}

// flood sends the packets over UDP from four senders for a few seconds, and
// samples the goroutines and heap in use meanwhile.
func flood(t *testing.T, addr string, pkts [][]byte, baseGoroutines int, baseHeap uint64) (sent int64, elapsed time.Duration, maxGoroutines int, maxHeap uint64) {
	stop := make(chan struct{})
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Write(pkts[i%len(pkts)]); err == nil {
					n.Add(1)
				}
			}
		})
	}
	maxGoroutines, maxHeap = baseGoroutines, baseHeap
	var ms runtime.MemStats
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		time.Sleep(50 * time.Millisecond)
		runtime.ReadMemStats(&ms)
		maxGoroutines = max(maxGoroutines, runtime.NumGoroutine())
		maxHeap = max(maxHeap, ms.HeapInuse)
	}
	close(stop)
	wg.Wait()
	return n.Load(), time.Since(start), maxGoroutines, maxHeap
}
