package clusterdns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// upstreamServer is a second real DNS server, UDP and TCP on one port, with
// a few names of its own.
type upstreamServer struct {
	addr     string
	udpAsked atomic.Int64
	tcpAsked atomic.Int64
}

const bigTXTRecords = 30

// startUpstream serves on addr ("127.0.0.1:0" for any port) until the test
// ends. TCP takes the port UDP got; with a fixed address whose TCP port is
// taken, it serves UDP alone.
func startUpstream(t *testing.T, addr string) *upstreamServer {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		if !strings.HasSuffix(addr, ":0") {
			t.Logf("upstream on UDP only: %v", err)
			break
		}
		_ = pc.Close()
	}
	if l == nil && strings.HasSuffix(addr, ":0") {
		t.Fatal("no port free for both UDP and TCP")
	}
	u := &upstreamServer{addr: pc.LocalAddr().String()}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", u.serve)
	servers := []*dns.Server{{PacketConn: pc, Handler: mux}}
	if l != nil {
		servers = append(servers, &dns.Server{Listener: l, Handler: mux})
	}
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return u
}

func (u *upstreamServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	udp := w.LocalAddr().Network() == "udp"
	if udp {
		u.udpAsked.Add(1)
	} else {
		u.tcpAsked.Add(1)
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	rr := func(s string) {
		r, err := dns.NewRR(s)
		if err == nil {
			m.Answer = append(m.Answer, r)
		}
	}
	switch strings.ToLower(q.Name) {
	case "example.com.":
		rr("example.com. 300 IN A 192.0.2.1")
	case "www.example.com.":
		rr("www.example.com. 300 IN A 192.0.2.80")
	case "1.2.0.192.in-addr.arpa.":
		rr("1.2.0.192.in-addr.arpa. 300 IN PTR example.com.")
	case "big.example.":
		for i := range bigTXTRecords {
			rr(fmt.Sprintf("big.example. 300 IN TXT \"%03d%s\"", i, strings.Repeat("x", 97)))
		}
	default:
		m.Rcode = dns.RcodeNameError
	}
	if udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func TestForward(t *testing.T) {
	up := startUpstream(t, "127.0.0.1:0")
	f := startServer(t, Config{Upstreams: []string{up.addr}}, svc("default", "ext", "", externalName("www.example.com")))
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			r := f.ask(t, network, "example.com.", dns.TypeA, 0)
			if got := rrs(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"example.com. 300 IN A 192.0.2.1"}) || r.Authoritative {
				t.Errorf("example.com: %s %q authoritative %v", rcodeOf(r), got, r.Authoritative)
			}
			if r := f.ask(t, network, "nx.example.", dns.TypeA, 0); r.Rcode != dns.RcodeNameError {
				t.Errorf("nx.example: %s, want the upstream's NXDOMAIN", rcodeOf(r))
			}
			r = f.ask(t, network, "1.2.0.192.in-addr.arpa.", dns.TypePTR, 0)
			if got := rrs(r.Answer); !slices.Equal(got, []string{"1.2.0.192.in-addr.arpa. 300 IN PTR example.com."}) {
				t.Errorf("PTR outside the cluster: %s %q", rcodeOf(r), got)
			}
			r = f.ask(t, network, "ext.default.svc.cluster.local.", dns.TypeA, 0)
			want := []string{"ext.default.svc.cluster.local. 5 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.80"}
			if got := rrs(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, want) {
				t.Errorf("ExternalName outside the zone: %s %q, want %q", rcodeOf(r), got, want)
			}
		})
	}
	// An answer too big for UDP: the server asks again over TCP, and gives
	// each client what it can take.
	tcpBefore := up.tcpAsked.Load()
	if r := f.ask(t, "tcp", "big.example.", dns.TypeTXT, 0); len(r.Answer) != bigTXTRecords || r.Truncated {
		t.Errorf("over TCP: %d records, truncated %v; want %d, false", len(r.Answer), r.Truncated, bigTXTRecords)
	}
	if up.tcpAsked.Load() == tcpBefore {
		t.Error("the upstream was not asked over TCP after a truncated UDP answer")
	}
	if r := f.ask(t, "udp", "big.example.", dns.TypeTXT, 0); !r.Truncated || len(r.Answer) >= bigTXTRecords {
		t.Errorf("over UDP without EDNS0: %d records, truncated %v; want fewer, true", len(r.Answer), r.Truncated)
	}
	if r := f.ask(t, "udp", "big.example.", dns.TypeTXT, 4096); r.Truncated || len(r.Answer) != bigTXTRecords {
		t.Errorf("over UDP with a 4096-byte EDNS0 buffer: %d records, truncated %v; want %d, false", len(r.Answer), r.Truncated, bigTXTRecords)
	}
	if n := f.counter(t, "keelson_clusterdns_forwarded_total", map[string]string{"result": "answered"}); n < 11 {
		t.Errorf("forwarded answered = %v, want at least 11", n)
	}
}

// blackHole is an upstream that takes queries and never answers.
func blackHole(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func TestUpstreamDown(t *testing.T) {
	hole := blackHole(t)
	addr := hole.LocalAddr().String()
	f := startServer(t, Config{Upstreams: []string{addr}, ForwardTimeout: 100 * time.Millisecond, HealthInterval: 20 * time.Millisecond})
	up := map[string]string{"upstream": addr}
	if r := f.ask(t, "udp", "example.com.", dns.TypeA, 0); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL from an upstream that never answers", rcodeOf(r))
	}
	eventually(t, func() error {
		if v := f.counter(t, "keelson_clusterdns_upstream_up", up); v != 0 {
			return errors.New("the upstream that never answers is not marked down")
		}
		return nil
	})
	// Marked down, it is not asked: the answer is SERVFAIL at once, counted
	// as "down", not as a failed exchange.
	failed := f.counter(t, "keelson_clusterdns_forwarded_total", map[string]string{"result": "failed"})
	for _, network := range []string{"udp", "tcp"} {
		if r := f.ask(t, network, "example.com.", dns.TypeA, 0); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: rcode %s, want SERVFAIL", network, rcodeOf(r))
		}
	}
	if n := f.counter(t, "keelson_clusterdns_forwarded_total", map[string]string{"result": "down"}); n != 2 {
		t.Errorf("forwarded down = %v, want 2", n)
	}
	if n := f.counter(t, "keelson_clusterdns_forwarded_total", map[string]string{"result": "failed"}); n != failed {
		t.Errorf("failed exchanges went from %v to %v with the upstream down", failed, n)
	}
	// The zone is answered all the same.
	if r := f.ask(t, "udp", "cluster.local.", dns.TypeSOA, 0); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("zone SOA with upstreams down: %s %v", rcodeOf(r), r.Answer)
	}
	// A resolver that comes back on that address is found by the health
	// checks and used again.
	_ = hole.Close()
	startUpstream(t, addr)
	eventually(t, func() error {
		if v := f.counter(t, "keelson_clusterdns_upstream_up", up); v != 1 {
			return errors.New("the upstream that came back is still marked down")
		}
		return nil
	})
	if r := f.ask(t, "udp", "example.com.", dns.TypeA, 0); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("after the upstream came back: %s %v", rcodeOf(r), r.Answer)
	}
}

func TestForwardFailover(t *testing.T) {
	hole := blackHole(t)
	up := startUpstream(t, "127.0.0.1:0")
	dead := hole.LocalAddr().String()
	f := startServer(t, Config{Upstreams: []string{dead, up.addr}, ForwardTimeout: 100 * time.Millisecond, HealthInterval: 20 * time.Millisecond})
	for i := range 6 {
		if r := f.ask(t, "udp", "example.com.", dns.TypeA, 0); r.Rcode != dns.RcodeSuccess {
			t.Errorf("query %d: %s, want the live upstream's answer", i, rcodeOf(r))
		}
	}
	eventually(t, func() error {
		if v := f.counter(t, "keelson_clusterdns_upstream_up", map[string]string{"upstream": dead}); v != 0 {
			return errors.New("the dead upstream is not marked down")
		}
		return nil
	})
	if v := f.counter(t, "keelson_clusterdns_upstream_up", map[string]string{"upstream": up.addr}); v != 1 {
		t.Errorf("the live upstream is marked down")
	}
}

func TestUpstreamsFromResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "# the host's\nsearch example.org\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(cs, 0)
	s, err := New(Config{
		Services:       factory.Core().V1().Services().Informer(),
		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
		Addr:           "127.0.0.1:0", ResolvConf: path, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range s.fwd.ups {
		got = append(got, u.addr)
	}
	if want := []string{"192.0.2.53:53", "[2001:db8::53]:53"}; !slices.Equal(got, want) {
		t.Errorf("upstreams %q, want %q", got, want)
	}
}

// TestNoForwardingToItself: an upstream that is the server's own address
// is left out, so that a miss does not loop through the server.
func TestNoForwardingToItself(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	for _, tc := range []struct {
		name      string
		self      string
		upstreams []string
		kept      []string
	}{
		{name: "its own address", self: "127.0.0.1:53", upstreams: []string{"127.0.0.1:53", "192.0.2.1:53"}, kept: []string{"192.0.2.1:53"}},
		{name: "another port", self: "127.0.0.1:10053", upstreams: []string{"127.0.0.1:53"}, kept: []string{"127.0.0.1:53"}},
		{name: "on every address: loopback and unspecified are itself", self: "0.0.0.0:53",
			upstreams: []string{"127.0.0.53:53", "0.0.0.0:53", "[::1]:53", "192.0.2.1:53"}, kept: []string{"192.0.2.1:53"}},
		{name: "on one address: a loopback resolver is another", self: "192.0.2.10:53",
			upstreams: []string{"127.0.0.53:53", "192.0.2.10:53"}, kept: []string{"127.0.0.53:53"}},
		{name: "only itself: forwarding off", self: "127.0.0.1:53", upstreams: []string{"127.0.0.1:53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{
				Services:       factory.Core().V1().Services().Informer(),
				EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
				Addr:           tc.self, Upstreams: tc.upstreams, Logger: quietLogger(),
			})
			if err != nil {
				t.Fatal(err)
			}
			s.dropSelf(netip.MustParseAddrPort(tc.self))
			var got []string
			if s.fwd != nil {
				for _, u := range s.fwd.ups {
					got = append(got, u.addr)
				}
			}
			if !slices.Equal(got, tc.kept) {
				t.Errorf("upstreams %q, want %q", got, tc.kept)
			}
		})
	}
}
