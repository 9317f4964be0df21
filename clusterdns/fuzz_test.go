package clusterdns

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// FuzzQuery feeds arbitrary bytes to the query path as a UDP packet: no
// panic, and either nothing or one well-formed answer to it that fits the
// client's UDP buffer.
func FuzzQuery(f *testing.F) {
	for _, tc := range recordCases {
		for _, edns := range []uint16{0, 1232} {
			q := new(dns.Msg)
			q.SetQuestion(tc.qname, tc.qtype)
			if edns > 0 {
				q.SetEdns0(edns, true)
			}
			p, err := q.Pack()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(p)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})

	s, ctx := fuzzServer(f)

	f.Fuzz(func(t *testing.T, pkt []byte) {
		var answers [][]byte
		c := client{call: func(b []byte) error {
			answers = append(answers, append([]byte(nil), b...))
			return nil
		}}
		s.handle(ctx, pkt, c, nil, time.Now())
		if len(answers) == 0 {
			return
		}
		if len(answers) > 1 {
			t.Fatalf("%d answers to one packet", len(answers))
		}
		req := new(dns.Msg)
		if err := req.Unpack(pkt); err != nil {
			t.Fatalf("answered a packet that does not parse (%v)", err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(answers[0]); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		if !m.Response || m.Id != binary.BigEndian.Uint16(pkt) {
			t.Fatalf("answer response %v id %d, to a query of id %d", m.Response, m.Id, binary.BigEndian.Uint16(pkt))
		}
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPAnswer)
		}
		if len(answers[0]) > size {
			t.Fatalf("answer of %d bytes, the client takes %d", len(answers[0]), size)
		}
	})
}

// fuzzServer is a server over the test zone, its informers synced, with no
// sockets: the fuzzer calls its query path directly.
func fuzzServer(f *testing.F) (*Server, context.Context) {
	cs := fake.NewClientset(zoneObjects()...)
	factory := informers.NewSharedInformerFactory(cs, 0)
	s, err := New(Config{
		Services:       factory.Core().V1().Services().Informer(),
		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
		Addr:           "127.0.0.1:0", Upstreams: []string{}, Logger: quietLogger(),
	})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	factory.Start(ctx.Done())
	eventually(f, func() error {
		if !s.ready() {
			return errors.New("the index never synced")
		}
		return nil
	})
	return s, ctx
}
