package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// Timeouts of the listeners and of the shutdown.
const (
	// shutdownGrace bounds how long Run waits, once its context ends, for
	// requests in flight; upgraded connections (WebSockets) are cut then.
	shutdownGrace = 5 * time.Second
	// readHeaderTimeout drops clients that send headers too slowly.
	readHeaderTimeout = 30 * time.Second
	// idleTimeout closes a client's keep-alive connection left unused.
	idleTimeout = 90 * time.Second
	// rebuildEvery is the least time between two builds of the routing
	// table: a burst of informer events costs one build.
	rebuildEvery = 20 * time.Millisecond
)

// Config says what the proxy watches and where it listens.
type Config struct {
	// Ingresses, IngressClasses, Services, EndpointSlices and Secrets are
	// informers of all namespaces (IngressClasses: of the cluster); the
	// caller starts them. Required.
	Ingresses, IngressClasses, Services, EndpointSlices, Secrets cache.SharedIndexInformer
	// HTTPAddr is the address of plain HTTP (HTTP/1.1 and h2c), e.g.
	// ":80"; "" serves no plain HTTP.
	HTTPAddr string
	// HTTPSAddr is the address of HTTPS (HTTP/1.1 and HTTP/2), e.g. ":443";
	// "" serves no HTTPS. At least one of the two is required.
	HTTPSAddr string
	// Event, when set, records an Event on an object: a Warning on an
	// Ingress whose backend service or TLS Secret is missing or bad (the
	// Reason constants). Each distinct problem of an object is told once,
	// when it appears, not per request. It is called from the goroutine
	// that rebuilds the routing table, so it should not block (an
	// EventRecorder does not).
	Event func(obj runtime.Object, eventType, reason, message string)
	// Logger receives the proxy's log; slog.Default() when nil. Nothing is
	// logged per request above Debug.
	Logger *slog.Logger
}

// Proxy is keelson's ingress proxy: an HTTP reverse proxy that routes by the
// Ingresses keelson serves to the ready endpoints of their services.
type Proxy struct {
	cfg      Config
	log      *slog.Logger
	fw       *forwarder
	fallback *tls.Certificate

	table   atomic.Pointer[table]
	refs    atomic.Pointer[refSet]
	kick    chan struct{}
	ready   chan struct{}
	started atomic.Bool
	builds  atomic.Uint64

	addrMu              sync.Mutex
	httpAddr, httpsAddr net.Addr

	inflight inflight

	// Owned by whoever builds the table: Run, then its rebuild loop.
	certs *certCache
	told  map[string]bool
}

// New checks cfg and returns a Proxy, with the self-signed certificate it
// serves to TLS clients of hosts without one of their own; Run starts it.
func New(cfg Config) (*Proxy, error) {
	var missing []string
	for _, inf := range []struct {
		name string
		inf  cache.SharedIndexInformer
	}{{"Ingresses", cfg.Ingresses}, {"IngressClasses", cfg.IngressClasses}, {"Services", cfg.Services},
		{"EndpointSlices", cfg.EndpointSlices}, {"Secrets", cfg.Secrets}} {
		if inf.inf == nil {
			missing = append(missing, inf.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ingress: the %s informers are required", strings.Join(missing, ", "))
	}
	if cfg.HTTPAddr == "" && cfg.HTTPSAddr == "" {
		return nil, errors.New("ingress: neither HTTPAddr nor HTTPSAddr is set: nothing to serve")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cert, err := selfSigned(time.Now())
	if err != nil {
		return nil, fmt.Errorf("ingress: default certificate: %w", err)
	}
	log := cfg.Logger.With("component", "ingress")
	p := &Proxy{
		cfg:      cfg,
		log:      log,
		fw:       newForwarder(log),
		fallback: cert,
		kick:     make(chan struct{}, 1),
		ready:    make(chan struct{}),
		certs:    newCertCache(),
		told:     map[string]bool{},
	}
	p.table.Store(&table{})
	return p, nil
}

// Ready is closed once Run listens and serves with a routing table built
// from synced informers.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// Addrs returns the addresses Run listens on, nil before it does and for an
// address not configured.
func (p *Proxy) Addrs() (http, https net.Addr) {
	p.addrMu.Lock()
	defer p.addrMu.Unlock()
	return p.httpAddr, p.httpsAddr
}

// Run listens on the configured addresses and serves until ctx ends, then
// shuts down: requests in flight get shutdownGrace to finish, upgraded
// connections are closed, and every goroutine Run started has returned
// when it does. It fails at once when an address cannot be bound. Run may
// be called once.
func (p *Proxy) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("ingress: Run called twice")
	}
	if ctx.Err() != nil {
		return nil
	}
	lns, err := p.listen(ctx)
	if err != nil {
		return err
	}
	closeAll := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	regs, err := p.watch()
	defer p.unwatch(regs)
	if err != nil {
		closeAll()
		return err
	}
	if !waitSynced(ctx, regs) {
		closeAll()
		return nil
	}
	p.rebuild()
	return p.serve(ctx, lns)
}

// listener is one bound address; secure ones serve TLS.
type listener struct {
	net.Listener
	secure bool
}

// listen binds the configured addresses.
func (p *Proxy) listen(ctx context.Context) ([]listener, error) {
	var lc net.ListenConfig
	var lns []listener
	for _, a := range []struct {
		what, addr string
		secure     bool
	}{{"HTTP", p.cfg.HTTPAddr, false}, {"HTTPS", p.cfg.HTTPSAddr, true}} {
		if a.addr == "" {
			continue
		}
		ln, err := lc.Listen(ctx, "tcp", a.addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("ingress: listen for %s on %s: %w", a.what, a.addr, err)
		}
		lns = append(lns, listener{ln, a.secure})
	}
	p.addrMu.Lock()
	for _, l := range lns {
		if l.secure {
			p.httpsAddr = l.Addr()
		} else {
			p.httpAddr = l.Addr()
		}
	}
	p.addrMu.Unlock()
	return lns, nil
}

// serve runs the servers and the rebuild loop until ctx ends or a server
// fails, then shuts everything down and waits for it.
func (p *Proxy) serve(ctx context.Context, lns []listener) error {
	// Requests' contexts derive from base, not ctx: in-flight requests may
	// finish after ctx ends, and cancelling base ends what is left.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()

	var wg sync.WaitGroup
	wg.Go(func() { p.loop(loopCtx) })
	errc := make(chan error, len(lns))
	var servers []*http.Server
	for _, ln := range lns {
		srv := p.server(base, ln.secure)
		servers = append(servers, srv)
		wg.Go(func() {
			var err error
			if srv.TLSConfig != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("ingress: serve on %s: %w", ln.Addr(), err)
			}
		})
	}
	close(p.ready)
	httpAddr, httpsAddr := p.Addrs()
	p.log.Info("ingress proxy serving", "http", httpAddr, "https", httpsAddr)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stopLoop()
	p.shutdown(servers, cancelBase)
	wg.Wait()
	return err
}

// server makes the server of one listener: HTTP/1.1 and h2c prior
// knowledge on plain HTTP, HTTP/1.1 and HTTP/2 by ALPN on HTTPS.
func (p *Proxy) server(base context.Context, secure bool) *http.Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		Protocols:         &protos,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		// Handshake failures and the like are the clients' business.
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	if secure {
		protos.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"h2", "http/1.1"},
			GetCertificate: p.certificate,
		}
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	return srv
}

// shutdown stops the servers gracefully for at most shutdownGrace, then
// ends what is left (upgraded connections, requests still running) and
// waits for every handler to return.
func (p *Proxy) shutdown(servers []*http.Server, cancelBase func()) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				p.log.Warn("ingress proxy: requests still running after the shutdown grace; closing them", "err", err)
				_ = srv.Close()
			}
		})
	}
	wg.Wait()
	cancelBase()
	p.inflight.closeAndWait()
	p.fw.closeIdle()
	p.log.Info("ingress proxy stopped")
}

// serveHTTP routes one request by the current table.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.inflight.enter() {
		plainError(w, "503 service unavailable: the ingress proxy is shutting down\n", http.StatusServiceUnavailable)
		return
	}
	defer p.inflight.exit()
	b := p.table.Load().route(hostOnly(r.Host), r.URL.Path)
	if b == nil {
		plainError(w, "404 not found: no Ingress rule matches this host and path\n", http.StatusNotFound)
		return
	}
	b.serve(w, r)
}

// plainError answers with a short plain-text body.
func plainError(w http.ResponseWriter, body string, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// inflight counts the handlers running, so that shutdown can wait for
// those the servers no longer track (upgraded connections).
type inflight struct {
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

func (f *inflight) enter() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	return true
}

func (f *inflight) exit() { f.wg.Done() }

func (f *inflight) closeAndWait() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}
