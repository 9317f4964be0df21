package clusterdns

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// rawUDP sends a packet and returns the answer, or nil when the server
// dropped it: counted it in dropped_total and sent nothing.
func (f *fixture) rawUDP(t *testing.T, pkt []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dropped := f.dropped(t)
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for range 500 {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			return buf[:n]
		}
		if f.dropped(t) > dropped {
			return nil
		}
	}
	t.Fatal("the packet was neither answered nor counted as dropped")
	return nil
}

// dropped is the count of packets dropped for any reason.
func (f *fixture) dropped(t *testing.T) float64 {
	var n float64
	for _, r := range []string{dropMalformed, dropResponse} {
		n += f.counter(t, "keelson_clusterdns_dropped_total", map[string]string{"reason": r})
	}
	return n
}

func packQuery(t *testing.T, edit func(*dns.Msg)) []byte {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	edit(q)
	p, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMalformedPackets(t *testing.T) {
	f := startServer(t, Config{}, zoneObjects()...)
	valid := packQuery(t, func(*dns.Msg) {})
	for _, tc := range []struct {
		name  string
		pkt   []byte
		rcode int // -1: no answer
	}{
		{name: "empty", pkt: []byte{}, rcode: -1},
		{name: "shorter than a header", pkt: []byte{1, 2, 3}, rcode: -1},
		{name: "random bytes", pkt: []byte("\x12\x34 this is not DNS at all, just some text"), rcode: -1},
		{name: "question cut short", pkt: valid[:len(valid)-3], rcode: -1},
		{name: "label longer than 63", pkt: append(append([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 70}, []byte(strings.Repeat("a", 70))...), 0, 0, 1, 0, 1), rcode: -1},
		{name: "compression loop", pkt: []byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, rcode: -1},
		{name: "a response", pkt: packQuery(t, func(m *dns.Msg) { m.Response = true }), rcode: -1},
		{name: "no question", pkt: packQuery(t, func(m *dns.Msg) { m.Question = nil }), rcode: dns.RcodeFormatError},
		{name: "two questions", pkt: packQuery(t, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), rcode: dns.RcodeFormatError},
		{name: "an update", pkt: packQuery(t, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), rcode: dns.RcodeNotImplemented},
		{name: "EDNS version 1", pkt: packQuery(t, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), rcode: dns.RcodeBadVers},
		{name: "chaos class", pkt: packQuery(t, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), rcode: dns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := f.rawUDP(t, tc.pkt)
			if tc.rcode < 0 {
				if got != nil {
					t.Errorf("answered %d bytes, want the packet dropped", len(got))
				}
			} else {
				m := new(dns.Msg)
				if err := m.Unpack(got); err != nil {
					t.Fatalf("answer does not parse: %v", err)
				}
				if m.Rcode != tc.rcode || !m.Response || m.Id != binary.BigEndian.Uint16(tc.pkt) {
					t.Errorf("rcode %s response %v id %d, want %s, true, %d", rcodeOf(m), m.Response, m.Id, rcodeName(tc.rcode), binary.BigEndian.Uint16(tc.pkt))
				}
			}
			// The server goes on answering.
			if r := f.ask(t, "udp", "web.default.svc.cluster.local.", dns.TypeA, 0); len(r.Answer) != 1 {
				t.Errorf("after the bad packet: %s %v", rcodeOf(r), r.Answer)
			}
		})
	}
	if n := f.counter(t, "keelson_clusterdns_dropped_total", map[string]string{"reason": dropMalformed}); n != 6 {
		t.Errorf("dropped malformed = %v, want 6", n)
	}
}

func TestMalformedTCP(t *testing.T) {
	f := startServer(t, Config{}, zoneObjects()...)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{name: "length below a header", data: []byte{0, 3, 1, 2, 3}},
		{name: "garbage message", data: append([]byte{0, 20}, []byte("xxxxxxxxxxxxxxxxxxxx")...)},
		{name: "length longer than what follows", data: []byte{0xff, 0xff, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.data); err != nil {
				t.Fatal(err)
			}
			if cw, ok := c.(*net.TCPConn); ok {
				_ = cw.CloseWrite()
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			if n, err := c.Read(buf); err == nil {
				t.Errorf("answered %d bytes, want nothing and the connection closed", n)
			}
			if r := f.ask(t, "tcp", "web.default.svc.cluster.local.", dns.TypeA, 0); len(r.Answer) != 1 {
				t.Errorf("after the bad connection: %s %v", rcodeOf(r), r.Answer)
			}
		})
	}
}

// TestPipelinedTCP sends several queries on one connection before reading.
func TestPipelinedTCP(t *testing.T) {
	f := startServer(t, Config{}, zoneObjects()...)
	conn, err := dns.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	names := []string{"web.default.svc.cluster.local.", "db.default.svc.cluster.local.", "nope.default.svc.cluster.local."}
	ids := map[uint16]string{}
	for i, n := range names {
		q := new(dns.Msg)
		q.SetQuestion(n, dns.TypeA)
		q.Id = uint16(1000 + i) // distinct: random ids may repeat
		ids[q.Id] = n
		if err := conn.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range names {
		r, err := conn.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		if ids[r.Id] != r.Question[0].Name {
			t.Errorf("answer %d is for %s, want %s", r.Id, r.Question[0].Name, ids[r.Id])
		}
		delete(ids, r.Id)
	}
}

// TestTruncation: a headless service with more endpoints than fit 512 bytes.
func TestTruncation(t *testing.T) {
	var eps []ep
	for i := range 100 {
		eps = append(eps, ep{addr: fmt.Sprintf("10.42.%d.%d", i/200, 1+i%200), ready: true})
	}
	f := startServer(t, Config{},
		svc("default", "many", corev1.ClusterIPNone, withPort("http", corev1.ProtocolTCP, 80)),
		epSlice("default", "many-1", "many", []discoveryv1.EndpointPort{slicePort("http", corev1.ProtocolTCP, 80)}, eps...))
	const name = "many.default.svc.cluster.local."
	for _, tc := range []struct {
		name     string
		network  string
		edns     uint16
		qtype    uint16
		truncate bool
	}{
		{name: "UDP without EDNS0", network: "udp", qtype: dns.TypeA, truncate: true},
		{name: "UDP with a small EDNS0 buffer", network: "udp", edns: 512, qtype: dns.TypeA, truncate: true},
		{name: "UDP with a 4096-byte EDNS0 buffer", network: "udp", edns: 4096, qtype: dns.TypeA},
		{name: "TCP", network: "tcp", qtype: dns.TypeA},
		{name: "SRV over UDP with 1232 bytes", network: "udp", edns: 1232, qtype: dns.TypeSRV, truncate: true},
		{name: "SRV over TCP", network: "tcp", qtype: dns.TypeSRV},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.ask(t, tc.network, name, tc.qtype, tc.edns)
			if r.Truncated != tc.truncate {
				t.Errorf("truncated %v, want %v", r.Truncated, tc.truncate)
			}
			if tc.truncate && len(r.Answer) >= 100 || !tc.truncate && len(r.Answer) != 100 {
				t.Errorf("%d answers, truncated %v", len(r.Answer), r.Truncated)
			}
			size := 512
			if tc.edns > 0 {
				size = int(tc.edns)
			}
			r.Compress = true // as it came
			if p, _ := r.Pack(); tc.network == "udp" && len(p) > size {
				t.Errorf("%d bytes over UDP, the client takes %d", len(p), size)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	good := Config{
		Services:       factory.Core().V1().Services().Informer(),
		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
		Addr:           "127.0.0.1:0", Upstreams: []string{}, Logger: quietLogger(),
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{name: "no informers", edit: func(c *Config) { c.Services = nil }, want: "Config.Services and Config.EndpointSlices are required"},
		{name: "no address", edit: func(c *Config) { c.Addr = "" }, want: "Config.Addr is required"},
		{name: "bad domain", edit: func(c *Config) { c.Domain = "a..b" }, want: `Config.Domain "a..b"`},
		{name: "bad upstream", edit: func(c *Config) { c.Upstreams = []string{"192.0.2.1:53", "dns.example"} }, want: `upstreams[1] "dns.example": want ip:port`},
		{name: "bad service CIDR", edit: func(c *Config) { c.ServiceCIDR = "10.43.0.0/30" }, want: "Config.ServiceCIDR"},
		{name: "missing resolv.conf", edit: func(c *Config) { c.Upstreams, c.ResolvConf = nil, "/nonexistent/resolv.conf" }, want: "/nonexistent/resolv.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestListenAddressTaken(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	s, err := New(Config{
		Services:       factory.Core().V1().Services().Informer(),
		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
		Addr:           taken.LocalAddr().String(), Upstreams: []string{}, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Listen()
	if err == nil || !strings.Contains(err.Error(), "udp "+taken.LocalAddr().String()) {
		t.Errorf("Listen on a taken address: %v, want an error naming udp %s", err, taken.LocalAddr())
	}
	if err := s.Serve(t.Context()); err == nil {
		t.Error("Serve without a successful Listen returned no error")
	}
}

// TestNotSynced: before the informers have listed, the zone is not denied.
func TestNotSynced(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset([]runtime.Object{}...), 0)
	s, err := New(Config{
		Services:       factory.Core().V1().Services().Informer(),
		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
		Addr:           "127.0.0.1:0", Upstreams: []string{}, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	m, _, _, _ := s.resolve(q)
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s before the informers synced, want SERVFAIL", rcodeOf(m))
	}
}
