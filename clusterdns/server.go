package clusterdns

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/internal/servicenet"
)

// Defaults of Config.
const (
	// DefaultTTL is the records' TTL in seconds, CoreDNS's for the cluster
	// zone: short, so that a moved endpoint is not cached for long.
	DefaultTTL = 5
	// DefaultResolvConf names the upstream resolvers when Config.Upstreams
	// is nil.
	DefaultResolvConf = "/etc/resolv.conf"
	// DefaultForwardTimeout bounds one exchange with an upstream.
	DefaultForwardTimeout = 2 * time.Second
	// DefaultHealthInterval is how often an upstream that failed is probed.
	DefaultHealthInterval = 2 * time.Second
)

// The server's fixed bounds, which keep its memory flat under a flood.
const (
	udpWorkers     = 8   // goroutines reading the UDP socket
	maxForwarding  = 256 // forwarded queries in flight
	maxTCPConns    = 256 // open TCP connections
	tcpIdleTimeout = 10 * time.Second
	maxUDPAnswer   = 4096 // the largest UDP answer sent, whatever the client's EDNS0 says
	ednsSize       = 1232 // the UDP size advertised: what fits a packet unfragmented
)

// Config configures a Server.
type Config struct {
	// Services and EndpointSlices are shared informers of all namespaces'
	// Services (core/v1) and EndpointSlices (discovery.k8s.io/v1). Required.
	// The caller starts them; the server registers event handlers on them in
	// New and answers SERVFAIL for the zone until both have synced.
	Services, EndpointSlices cache.SharedIndexInformer
	// Domain is the cluster zone, servicenet.DefaultClusterDomain when empty.
	Domain string
	// Addr is the address to listen on, UDP and TCP, e.g. ":53". Required.
	Addr string
	// Upstreams are the "ip:port" resolvers of names outside the zone. Nil:
	// the nameservers of ResolvConf; empty and not nil: forwarding off.
	Upstreams []string
	// ResolvConf is read when Upstreams is nil, DefaultResolvConf when empty.
	ResolvConf string
	// ServiceCIDR is the service network, servicenet.DefaultServiceCIDR when
	// empty: reverse names of unknown addresses in it are answered NXDOMAIN
	// here instead of going upstream.
	ServiceCIDR string
	// TTL of the zone's records and of negative answers, DefaultTTL when 0.
	TTL uint32
	// ForwardTimeout bounds one upstream exchange, DefaultForwardTimeout when 0.
	ForwardTimeout time.Duration
	// HealthInterval is how often upstreams that failed are probed,
	// DefaultHealthInterval when 0.
	HealthInterval time.Duration
	// Logger receives the server's logs; slog.Default() when nil.
	Logger *slog.Logger
	// Registerer receives the server's metrics; none are registered when nil.
	Registerer prometheus.Registerer
}

// Server is the cluster DNS server. Make one with New, bind it with Listen,
// run it with Serve.
type Server struct {
	log          *slog.Logger
	addr         string
	zone         string // lower case, fully qualified: "cluster.local."
	dotZone      string // ".cluster.local."
	nsName, mbox string
	revZone      string       // the reverse zone holding svcCIDR, cut at an octet
	svcCIDR      netip.Prefix // the service CIDR
	ttl          uint32
	idx          *index
	synced       func() bool
	isSynced     atomic.Bool
	fwd          *forwarder // nil: forwarding off
	m            *metrics

	udp     *net.UDPConn
	udp6    bool // the UDP socket is IPv6 (dual-stack)
	tcp     *net.TCPListener
	serving atomic.Bool

	fwdSlots chan struct{}
	tcpSlots chan struct{}
	wg       sync.WaitGroup
	connMu   sync.Mutex
	conns    map[net.Conn]struct{}
}

// New checks the configuration and starts keeping the index from the
// informers' events.
func New(cfg Config) (*Server, error) {
	if cfg.Services == nil || cfg.EndpointSlices == nil {
		return nil, errors.New("clusterdns: Config.Services and Config.EndpointSlices are required")
	}
	if cfg.Addr == "" {
		return nil, errors.New("clusterdns: Config.Addr is required (e.g. \":53\")")
	}
	s := &Server{addr: cfg.Addr, ttl: cfg.TTL, fwdSlots: make(chan struct{}, maxForwarding),
		tcpSlots: make(chan struct{}, maxTCPConns), conns: map[net.Conn]struct{}{}}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "clusterdns")
	if s.ttl == 0 {
		s.ttl = DefaultTTL
	}
	if err := s.setZone(cfg.Domain, cfg.ServiceCIDR); err != nil {
		return nil, err
	}
	s.m = newMetrics(cfg.Registerer)
	if err := s.setUpstreams(cfg); err != nil {
		return nil, err
	}
	s.idx = newIndex(uint32(time.Now().Unix()))
	synced, err := s.idx.watch(cfg.Services, cfg.EndpointSlices, s.log)
	if err != nil {
		return nil, fmt.Errorf("clusterdns: %w", err)
	}
	s.synced = synced
	return s, nil
}

func (s *Server) setZone(domain, serviceCIDR string) error {
	if domain == "" {
		domain = servicenet.DefaultClusterDomain
	}
	s.zone = strings.ToLower(dns.Fqdn(domain))
	if _, ok := dns.IsDomainName(s.zone); !ok || s.zone == "." || strings.Contains(s.zone, `\`) {
		return fmt.Errorf("clusterdns: Config.Domain %q: not a domain name", domain)
	}
	s.dotZone = "." + s.zone
	s.nsName, s.mbox = "ns.dns."+s.zone, "hostmaster."+s.zone
	if serviceCIDR == "" {
		serviceCIDR = servicenet.DefaultServiceCIDR
	}
	cidr, err := servicenet.ParseCIDR(serviceCIDR)
	if err != nil {
		return fmt.Errorf("clusterdns: Config.ServiceCIDR: %w", err)
	}
	s.svcCIDR, s.revZone = cidr.Prefix(), reverseZone(cidr.Prefix())
	return nil
}

func (s *Server) setUpstreams(cfg Config) error {
	ups := cfg.Upstreams
	if ups == nil {
		path := cfg.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		var err error
		ups, err = upstreamsFrom(path)
		if err != nil {
			if cfg.ResolvConf != "" || !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("clusterdns: %w", err)
			}
			s.log.Warn("no resolv.conf, forwarding off", "path", path)
		}
	}
	if _, err := checkUpstreams(ups); err != nil {
		return fmt.Errorf("clusterdns: %w", err)
	}
	if len(ups) == 0 {
		return nil
	}
	timeout, interval := cfg.ForwardTimeout, cfg.HealthInterval
	if timeout <= 0 {
		timeout = DefaultForwardTimeout
	}
	if interval <= 0 {
		interval = DefaultHealthInterval
	}
	s.fwd = newForwarder(ups, timeout, interval, s.m, s.log)
	return nil
}

// Listen binds the UDP and TCP sockets of Config.Addr.
func (s *Server) Listen() error {
	if s.udp != nil {
		return errors.New("clusterdns: Listen called twice")
	}
	uaddr, err := net.ResolveUDPAddr("udp", s.addr)
	if err != nil {
		return fmt.Errorf("clusterdns: listen address %q: %w", s.addr, err)
	}
	// With port 0, the port UDP got may be taken for TCP: try others.
	tries := 1
	if uaddr.Port == 0 {
		tries = 20
	}
	for {
		err = s.bind(uaddr)
		if tries--; err == nil || tries == 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
	}
}

// bind binds UDP, then TCP on the port UDP got.
func (s *Server) bind(uaddr *net.UDPAddr) error {
	udp, err := net.ListenUDP("udp", uaddr)
	if err != nil {
		return fmt.Errorf("clusterdns: listen on udp %s (is another DNS server using it?): %w", s.addr, err)
	}
	bound := udp.LocalAddr().(*net.UDPAddr)
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: bound.IP, Port: bound.Port, Zone: bound.Zone})
	if err != nil {
		_ = udp.Close()
		return fmt.Errorf("clusterdns: listen on tcp %s (is another DNS server using it?): %w", bound, err)
	}
	v6, err := enablePacketInfo(udp)
	if err != nil {
		_ = udp.Close()
		_ = tcp.Close()
		return fmt.Errorf("clusterdns: udp %s: %w", bound, err)
	}
	// Room for a burst of queries while the readers are busy; the kernel
	// caps it at net.core.rmem_max, which is fine too.
	_ = udp.SetReadBuffer(4 << 20)
	s.udp, s.udp6, s.tcp = udp, v6, tcp
	s.dropSelf(bound.AddrPort())
	return nil
}

// dropSelf takes the server's own address out of the upstreams: a host
// whose resolv.conf names the server would make every miss loop.
func (s *Server) dropSelf(self netip.AddrPort) {
	if s.fwd == nil {
		return
	}
	kept := s.fwd.ups[:0]
	for _, u := range s.fwd.ups {
		ap, _ := netip.ParseAddrPort(u.addr)
		a := ap.Addr().Unmap()
		me := self.Addr().Unmap()
		mine := ap.Port() == self.Port() &&
			(a == me || me.IsUnspecified() && (a.IsLoopback() || a.IsUnspecified() || isLocal(a)))
		if mine {
			s.log.Warn("upstream is this server itself, not forwarding to it", "upstream", u.addr)
			s.m.upstream.DeleteLabelValues(u.addr)
			continue
		}
		kept = append(kept, u)
	}
	s.fwd.ups = kept
	if len(kept) == 0 {
		s.fwd = nil
	}
}

// isLocal reports whether an address is one of this host's.
func isLocal(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
				return true
			}
		}
	}
	return false
}

// Addr returns the bound address, after Listen; nil before.
func (s *Server) Addr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}
