package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// maxFails is how many failures in a row mark an upstream down: one lost
// UDP packet should not take a resolver out of service.
const maxFails = 2

// errNoUpstream says every upstream is down.
var errNoUpstream = errors.New("clusterdns: no upstream resolver answers")

// upstream is one resolver names outside the zone are forwarded to.
type upstream struct {
	addr  string
	fails atomic.Int32
	down  atomic.Bool
	up    prometheus.Gauge
}

// forwarder sends queries upstream, fails over between resolvers and keeps
// track of which answer.
type forwarder struct {
	ups      []*upstream
	next     atomic.Uint32
	udp, tcp *dns.Client
	interval time.Duration
	log      *slog.Logger
}

func newForwarder(addrs []string, timeout, interval time.Duration, m *metrics, log *slog.Logger) *forwarder {
	f := &forwarder{
		udp:      &dns.Client{Net: "udp", Timeout: timeout, UDPSize: dns.DefaultMsgSize},
		tcp:      &dns.Client{Net: "tcp", Timeout: timeout},
		interval: interval,
		log:      log,
	}
	for _, a := range addrs {
		u := &upstream{addr: a, up: m.upstream.WithLabelValues(a)}
		u.up.Set(1)
		f.ups = append(f.ups, u)
	}
	return f
}

// available reports whether any upstream is up.
func (f *forwarder) available() bool {
	for _, u := range f.ups {
		if !u.down.Load() {
			return true
		}
	}
	return false
}

// exchange asks the upstreams that are up, starting from a different one
// each time, until one answers. It returns errNoUpstream when none is up.
func (f *forwarder) exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	start := int(f.next.Add(1))
	var last error = errNoUpstream
	tried := 0
	for i := range f.ups {
		u := f.ups[(start+i)%len(f.ups)]
		if u.down.Load() {
			continue
		}
		if tried++; tried > 2 {
			break
		}
		r, err := f.ask(ctx, u, req)
		if err == nil {
			f.succeeded(u)
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.failed(u, err)
		last = err
	}
	return nil, last
}

// ask sends one query to one upstream over UDP, and again over TCP when the
// answer was truncated.
func (f *forwarder) ask(ctx context.Context, u *upstream, req *dns.Msg) (*dns.Msg, error) {
	r, err := exchangeOn(ctx, f.udp, req, u.addr)
	if err == nil && r.Truncated {
		r, err = exchangeOn(ctx, f.tcp, req, u.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.addr, err)
	}
	return r, nil
}

// exchangeOn is one exchange that ends when ctx does: the client library
// only heeds a context's deadline, so closing the socket is what stops a
// read from a silent upstream when the server shuts down.
func exchangeOn(ctx context.Context, c *dns.Client, req *dns.Msg, addr string) (*dns.Msg, error) {
	co, err := c.DialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	stop := context.AfterFunc(ctx, func() { _ = co.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, req, co)
	return r, err
}

func (f *forwarder) succeeded(u *upstream) {
	u.fails.Store(0)
	if u.down.CompareAndSwap(true, false) {
		u.up.Set(1)
		f.log.Info("upstream resolver answers again", "upstream", u.addr)
	}
}

func (f *forwarder) failed(u *upstream, err error) {
	if u.fails.Add(1) >= maxFails && u.down.CompareAndSwap(false, true) {
		u.up.Set(0)
		f.log.Warn("upstream resolver marked down", "upstream", u.addr, "error", err)
	}
}

// check probes every upstream that failed lately (down or not yet), now and
// then, until ctx ends: an answer of any kind brings it back.
func (f *forwarder) check(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	probe := new(dns.Msg)
	probe.SetQuestion(".", dns.TypeNS)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, u := range f.ups {
			if u.fails.Load() == 0 {
				continue
			}
			if _, err := f.ask(ctx, u, probe.Copy()); err == nil {
				f.succeeded(u)
			} else if ctx.Err() == nil {
				f.failed(u, err)
			}
		}
	}
}

// upstreamsFrom reads the nameservers of a resolv.conf as "ip:port".
func upstreamsFrom(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read upstream resolvers from %s: %w", path, err)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}

// checkUpstreams parses "ip:port" addresses, saying which one is wrong.
func checkUpstreams(addrs []string) ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, 0, len(addrs))
	for i, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || ap.Port() == 0 {
			return nil, fmt.Errorf("upstreams[%d] %q: want ip:port, e.g. 192.0.2.53:53", i, a)
		}
		out = append(out, ap)
	}
	return out, nil
}
