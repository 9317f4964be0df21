package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keelson/keelson/internal/version"
)

// Check is one readiness check: nil when the dependency it names answers.
type Check func(ctx context.Context) error

// Config is what the server needs. Addr and Logger are required.
type Config struct {
	// Addr is the listen address, host:port.
	Addr string
	// ReadyChecks must all pass for /readyz to answer 200, keyed by name ("etcd").
	ReadyChecks map[string]Check
	// Gatherer is served at /metrics; prometheus.DefaultGatherer when nil.
	Gatherer prometheus.Gatherer
	// Logger for the server's own lines.
	Logger *slog.Logger
}

// Server is keelson's HTTP API server.
type Server struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
}

// New returns a server with the health, readiness, metrics and version
// endpoints registered.
func New(cfg Config) *Server {
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger.With("component", "apiserver")}
	s.mux.HandleFunc("GET /healthz", s.livez)
	s.mux.HandleFunc("GET /livez", s.livez)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /version", s.version)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	return s
}

// Handle registers h for pattern (http.ServeMux syntax), for the parts of the
// API that live outside this file.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the server's root handler.
func (s *Server) Handler() http.Handler { return s.mux }

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
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	s.log.Info("serving", "address", l.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
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
