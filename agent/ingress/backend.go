package ingress

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"
)

// Tuning of the connections to endpoints.
const (
	// maxTries is how many endpoints a request tries when they cannot be
	// connected to.
	maxTries = 3
	// dialTimeout bounds a connection attempt, after which another
	// endpoint is tried.
	dialTimeout = 5 * time.Second
	// maxIdlePerEndpoint is how many keep-alive connections each endpoint
	// keeps for the next requests; maxIdle, for all of them.
	maxIdlePerEndpoint = 256
	maxIdle            = 4096
	bufferSize         = 32 << 10
)

// forwarder holds what every backend shares: the transports, with their
// pools of keep-alive connections to endpoints, and the copy buffers.
type forwarder struct {
	h1, h2c *http.Transport
	pool    *bufferPool
	log     *slog.Logger
	errLog  *log.Logger
}

func newForwarder(log *slog.Logger) *forwarder {
	return &forwarder{
		h1:     newTransport(false),
		h2c:    newTransport(true),
		pool:   &bufferPool{},
		log:    log,
		errLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// newTransport makes the transport to endpoints: HTTP/1.1, or HTTP/2 with
// prior knowledge for h2c ports. Responses pass through as the endpoints
// encode them.
func newTransport(h2c bool) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	var protos http.Protocols
	if h2c {
		protos.SetUnencryptedHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return c, nil
		},
		Protocols:             &protos,
		MaxIdleConns:          maxIdle,
		MaxIdleConnsPerHost:   maxIdlePerEndpoint,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

func (f *forwarder) closeIdle() {
	f.h1.CloseIdleConnections()
	f.h2c.CloseIdleConnections()
}

// dialError is a failed connection to an endpoint: nothing of the request
// was sent, so another endpoint may take it, whatever its method.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// backend is a service port and its ready endpoints, as one table has them.
// A backend with a status answers every request with it and body.
type backend struct {
	name   string // namespace/service:port
	eps    []string
	h2c    bool
	next   atomic.Uint64
	status int
	body   string
	rp     *httputil.ReverseProxy
	fw     *forwarder
}

func (f *forwarder) newBackend(name string, eps []string, h2c bool) *backend {
	b := &backend{name: name, eps: eps, h2c: h2c, fw: f}
	if len(eps) == 0 {
		b.status, b.body = http.StatusServiceUnavailable, "503 service unavailable: the backend has no ready endpoint\n"
		return b
	}
	b.rp = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    b,
		BufferPool:   f.pool,
		ErrorHandler: b.proxyError,
		ErrorLog:     f.errLog,
	}
	return b
}

// rewrite keeps the client's Host and tells the endpoint who asked, and
// how, in X-Forwarded-For, -Host and -Proto. RoundTrip picks the endpoint.
func rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	if b.rp == nil {
		plainError(w, b.body, b.status)
		return
	}
	b.rp.ServeHTTP(w, r)
}

// RoundTrip sends the request to the next endpoint, round robin. When an
// endpoint cannot be connected to, nothing was sent and the next one is
// tried, up to maxTries; once a connection took the request it is never
// sent again.
func (b *backend) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := b.fw.h1
	if b.h2c && req.Header.Get("Upgrade") == "" {
		rt = b.fw.h2c
	}
	n := len(b.eps)
	start := int(b.next.Add(1) % uint64(n))
	tries := min(n, maxTries)
	var body *heldBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &heldBody{rc: req.Body}
		req.Body = body
	}
	for i := 0; ; i++ {
		out := req
		if i > 0 {
			out = req.WithContext(req.Context())
			u := *req.URL
			out.URL = &u
		}
		out.URL.Host = b.eps[(start+i)%n]
		resp, err := rt.RoundTrip(out)
		var de *dialError
		if err == nil || i+1 >= tries || !errors.As(err, &de) || req.Context().Err() != nil || (body != nil && body.read.Load()) {
			return resp, err
		}
		b.fw.log.Debug("endpoint unreachable; trying another", "backend", b.name, "endpoint", out.URL.Host, "err", err)
	}
}

// proxyError answers a request no endpoint took: 502, or 504 when the
// endpoint did not answer in time. A client that went away gets nothing.
func (b *backend) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	b.fw.log.Debug("proxying failed", "backend", b.name, "err", err)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		plainError(w, "504 gateway timeout: the backend did not answer in time\n", http.StatusGatewayTimeout)
		return
	}
	plainError(w, "502 bad gateway: the backend could not be reached\n", http.StatusBadGateway)
}

// heldBody keeps a request's body open across a failed connection: the
// transport closes the body of a request it could not send, and the next
// endpoint needs it. Once read, it closes when asked.
type heldBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (h *heldBody) Read(p []byte) (int, error) {
	h.read.Store(true)
	return h.rc.Read(p)
}

func (h *heldBody) Close() error {
	if h.read.Load() {
		return h.rc.Close()
	}
	return nil
}

// bufferPool lends the buffers responses are copied through.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, bufferSize)
}

func (bp *bufferPool) Put(b []byte) {
	if cap(b) >= bufferSize {
		b = b[:bufferSize]
		bp.p.Put(&b)
	}
}
