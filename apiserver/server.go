package apiserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/keelson/keelson/internal/version"
	"github.com/keelson/keelson/store"
)

// Check is one readiness check: nil when the dependency it names answers.
type Check func(ctx context.Context) error

// Config is what the server needs. Addr and Logger are required.
type Config struct {
	// Addr is the listen address, host:port.
	Addr string
	// ReadyChecks must all pass for /readyz to answer 200, keyed by name ("etcd").
	ReadyChecks map[string]Check
	// Profiling serves Go's profiles at /debug/pprof/ to system:masters.
	Profiling bool
	// Gatherer is served at /metrics; prometheus.DefaultGatherer when nil.
	Gatherer prometheus.Gatherer
	// Logger for the server's own lines.
	Logger *slog.Logger

	// Store serves the resource API (/api, /apis); without it only the
	// endpoints above are served.
	Store *store.Store
	// Tokens authenticate bearer tokens; nil accepts none.
	Tokens *Tokens
	// AnonymousRead lets requests without a token read as system:anonymous.
	AnonymousRead bool
	// Grants are the authorization file's: who reads what beside what RBAC
	// from Git allows. Without either, only system:masters and agents read.
	Grants *Grants
	// ServiceAccounts, when set, issues tokens to agents for their pods and
	// takes those tokens as their ServiceAccounts.
	ServiceAccounts *ServiceAccountConfig
	// TLS, when set, serves HTTPS with it.
	TLS *tls.Config
	// Registerer receives the API's metrics; none are registered when nil.
	Registerer prometheus.Registerer
	// WatchCache tunes the watch caches; zero values take defaults.
	WatchCache WatchCacheConfig
	// Hooks, when set, serves every path under /hooks/ without a bearer
	// token: it authenticates each request itself (a webhook's signature).
	Hooks http.Handler
	// UI, when set, makes the web view served under /ui/ from the API's
	// own handler, which it reads through as each signed-in person; it
	// authenticates each request itself (a cookie holding a token).
	UI func(api http.Handler) http.Handler
}

// WatchCacheConfig tunes the per-resource watch caches.
type WatchCacheConfig struct {
	// History is how many recent events a watch may resume from (4096).
	History int
	// WatcherBuffer is how far a client watch may fall behind before it is
	// dropped with an ERROR event (1024 events).
	WatcherBuffer int
	// BookmarkInterval is how often watches that allow bookmarks get one (30s).
	BookmarkInterval time.Duration
}

// Server is keelson's HTTP API server.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler
	log     *slog.Logger
	metrics *metrics

	// caches are started on first use and stopped by Close.
	rbac     rbacState
	verified verifiedTokens
	// refusals rations the log lines of refused tokens.
	refusals *rate.Limiter

	cachesMu sync.Mutex
	caches   map[string]*cache
	ctx      context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// New returns a server with the health, readiness, metrics and version
// endpoints registered.
func New(cfg Config) *Server {
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger.With("component", "apiserver"),
		metrics: newMetrics(cfg.Registerer), caches: map[string]*cache{}, refusals: rate.NewLimiter(10, 20)}
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.mux.HandleFunc("GET /healthz", s.livez)
	s.mux.HandleFunc("GET /livez", s.livez)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /version", s.version)
	s.mux.Handle("GET /metrics", s.authorizePath(promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})))
	if cfg.Profiling {
		s.registerProfiling()
	}
	if cfg.Store != nil {
		s.registerDiscovery()
		s.registerMetricsAPI()
		s.registerReviews()
		s.mux.HandleFunc("/api/", s.serveResource)
		s.mux.HandleFunc("/apis/", s.serveResource)
	}
	api := s.authenticate(s.mux)
	core := s.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.Hooks != nil && strings.HasPrefix(r.URL.Path, "/hooks/") {
			cfg.Hooks.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	}))
	s.handler = core
	if cfg.UI != nil {
		ui := cfg.UI(core)
		s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasPrefix(r.URL.Path, "/ui/"):
				ui.ServeHTTP(w, r)
			case (r.URL.Path == "/" || r.URL.Path == "/ui") && r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html"):
				// A browser at the API's address wants the view.
				http.Redirect(w, r, "/ui/", http.StatusFound)
			default:
				core.ServeHTTP(w, r)
			}
		})
	}
	return s
}

// Close stops the watch caches and ends every client watch.
func (s *Server) Close() {
	s.stop()
	s.wg.Wait()
}

// Handle registers h for pattern (http.ServeMux syntax), for the parts of the
// API that live outside this file.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the server's root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen opens the listen address, with an error that says what to do when the
// port is taken.
func (s *Server) Listen() (net.Listener, error) {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("API address %s is taken: stop what listens there (another keelson?) or choose another with --listen", s.cfg.Addr)
		}
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	return l, nil
}

// Serve serves on l until ctx ends, then shuts down, letting requests in
// flight finish for up to 10 seconds.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	defer s.Close()
	if s.cfg.Store != nil {
		// Caches that exist before any client lists can resume every watch
		// from a list's resourceVersion, even one read straight from etcd.
		for _, r := range store.Resources() {
			s.cacheFor(r)
		}
		// The registry of custom resources follows the CRDs for as long as
		// the server runs, and no longer.
		crdCtx, stopCRDs := context.WithCancel(ctx)
		defer stopCRDs()
		go s.watchCustom(crdCtx)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         s.cfg.TLS,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLS != nil {
			errc <- srv.ServeTLS(l, "", "")
			return
		}
		errc <- srv.Serve(l)
	}()
	s.log.Info("serving", "address", l.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	// Watches never finish by themselves: end them first so Shutdown does
	// not wait the whole grace period for them.
	s.Close()
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shut down API server: %w", err)
	}
	return nil
}

func (s *Server) livez(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// readyz answers 200 "ok" when every check passes, else 503 with one line per
// check, as Kubernetes' /readyz?verbose does.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	names := make([]string, 0, len(s.cfg.ReadyChecks))
	for name := range s.cfg.ReadyChecks {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	failed := false
	for _, name := range names {
		if err := s.cfg.ReadyChecks[name](ctx); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: %v\n", name, err)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, b.String())
		fmt.Fprintln(w, "readyz check failed")
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprint(w, b.String())
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(version.Info())
}
