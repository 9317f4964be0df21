package apiserver

import (
	"net/http"
	"net/http/pprof"
)

// registerProfiling serves Go's profiles under /debug/pprof/, as
// kube-apiserver does with --profiling, to members of system:masters only:
// a heap or CPU profile of a running keelson says where its memory and time
// go.
func (s *Server) registerProfiling() {
	admin := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if u := userFrom(r.Context()); u == nil || !u.InGroup(GroupMasters) {
				http.Error(w, "profiles are for members of "+GroupMasters, http.StatusForbidden)
				return
			}
			h(w, r)
		}
	}
	s.mux.HandleFunc("GET /debug/pprof/", admin(pprof.Index))
	s.mux.HandleFunc("GET /debug/pprof/cmdline", admin(pprof.Cmdline))
	s.mux.HandleFunc("GET /debug/pprof/profile", admin(pprof.Profile))
	s.mux.HandleFunc("GET /debug/pprof/symbol", admin(pprof.Symbol))
	s.mux.HandleFunc("GET /debug/pprof/trace", admin(pprof.Trace))
}
