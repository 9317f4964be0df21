package apiserver

import (
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/keelson/keelson/store"
)

// serveResource serves every request under /api/ and /apis/ that discovery
// does not: reads for everyone with a grant, writes for node agents only.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	q, err := parseRequest(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	setRequestInfo(r, q)
	u := userFrom(r.Context())
	switch q.verb {
	case "get", "list", "watch":
		if q.subresource == "log" && q.verb == "get" {
			if err := s.authorizeRead(r.Context(), u, q); err != nil {
				writeStatus(w, err)
				return
			}
			s.podLog(w, r, q)
			return
		}
		if q.subresource != "" && q.subresource != "status" || q.subresource == "token" {
			writeStatus(w, apierrors.NewNotFound(q.groupResource(), q.name))
			return
		}
		if err := s.authorizeRead(r.Context(), u, q); err != nil {
			writeStatus(w, err)
			return
		}
		s.read(w, r, q, u)
	case "create":
		if q.subresource == "token" {
			s.createToken(w, r, q, u)
			return
		}
		s.write(w, r, q, u)
	default:
		s.write(w, r, q, u)
	}
}

func (s *Server) read(w http.ResponseWriter, r *http.Request, q *request, u *User) {
	v := &view{res: q.res, secrets: s.secretsView(r.Context(), u, q), table: wantsTable(r), pretty: isTrue(r.URL.Query().Get("pretty"))}
	switch q.verb {
	case "get":
		s.get(w, r, q, v)
	case "list":
		s.list(w, r, q, v)
	case "watch":
		s.watch(w, r, q, v)
	}
}

// cacheFor returns the watch cache of res, starting it on first use.
func (s *Server) cacheFor(res store.Resource) *cache {
	s.cachesMu.Lock()
	defer s.cachesMu.Unlock()
	c, ok := s.caches[res.String()]
	if !ok {
		c = newCache(res, s.cfg.Store, cacheConfig{History: s.cfg.WatchCache.History, WatcherBuffer: s.cfg.WatchCache.WatcherBuffer}, s.log, s.metrics)
		s.caches[res.String()] = c
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.run(s.ctx)
		}()
	}
	return c
}

// requestInfo is filled in by serveResource for the metrics wrapper.
type requestInfo struct {
	verb, resource string
}

type infoKey struct{}

func setRequestInfo(r *http.Request, q *request) {
	if ri, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		ri.verb, ri.resource = q.verb, q.res.String()
	}
}

// statusRecorder remembers the response code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (sr *statusRecorder) WriteHeader(code int) {
	if sr.code == 0 {
		sr.code = code
	}
	sr.ResponseWriter.WriteHeader(code)
}

func (sr *statusRecorder) Write(b []byte) (int, error) {
	if sr.code == 0 {
		sr.code = http.StatusOK
	}
	return sr.ResponseWriter.Write(b)
}

func (sr *statusRecorder) Flush() {
	if f, ok := sr.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (sr *statusRecorder) Unwrap() http.ResponseWriter { return sr.ResponseWriter }

// instrument counts requests and their latency by verb, resource and code.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{verb: r.Method, resource: ""}
		sr := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(sr, r.WithContext(contextWith(r, infoKey{}, ri)))
		if ri.resource == "" {
			ri.verb = "other"
		}
		code := sr.code
		if code == 0 {
			code = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(ri.verb, ri.resource, strconv.Itoa(code)).Inc()
		if ri.verb != "watch" {
			s.metrics.latency.WithLabelValues(ri.verb, ri.resource).Observe(time.Since(start).Seconds())
		}
	})
}
