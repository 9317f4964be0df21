package agent

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/agent/logs"
	"github.com/keelson/keelson/agent/pod"
)

// Handler serves the agent's own endpoint, which only keelson's API server
// calls: GET /containerLogs/{namespace}/{pod}/{container} with the kubelet's
// query (follow, tailLines, sinceSeconds, sinceTime, timestamps, previous),
// and GET /stats/summary, the node's and its containers' CPU and memory.
// A caller proves it is the API server with the node's own token, which only
// the server's token file and this node hold.
func (a *Agent) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", a.containerLogs)
	mux.HandleFunc("GET /stats/summary", a.statsSummary)
	want := []byte("Bearer " + strings.TrimSpace(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *Agent) containerLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	obj, ok, err := a.pods.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s is not on node %s", ns, name, a.cfg.NodeName), http.StatusNotFound)
		return
	}
	p := obj.(*corev1.Pod)
	opts, previous, err := logOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	path, running, err := a.runner.LogPath(r.Context(), p, container, previous)
	if errors.Is(err, pod.ErrNoLogs) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if opts.Follow {
		done := make(chan struct{})
		if !running {
			close(done)
		} else {
			go a.closeWhenStopped(r.Context(), p, container, path, done)
		}
		opts.Done = done
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w}
	fw.Flush() // a follower learns at once that the log is there
	if err := logs.Read(r.Context(), path, fw, opts); err != nil {
		a.log.Warn("serving logs", "pod", ns+"/"+name, "container", container, "err", err)
	}
}

// closeWhenStopped closes done once the container whose log is at path no
// longer runs, so a follower gets the end of the log and stops.
func (a *Agent) closeWhenStopped(ctx context.Context, p *corev1.Pod, container, path string, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		cur, running, err := a.runner.LogPath(ctx, p, container, false)
		if err != nil || cur != path || !running {
			return
		}
	}
}

func logOptions(r *http.Request) (logs.ReadOptions, bool, error) {
	q := r.URL.Query()
	var opts logs.ReadOptions
	opts.Follow = q.Get("follow") == "true"
	opts.Timestamps = q.Get("timestamps") == "true"
	previous := q.Get("previous") == "true"
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return opts, false, fmt.Errorf("tailLines %q: want a non-negative integer", v)
		}
		opts.TailLines = n
		if n == 0 {
			opts.TailLines = -1
		}
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return opts, false, fmt.Errorf("sinceSeconds %q: want a positive integer", v)
		}
		opts.Since = time.Now().Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return opts, false, fmt.Errorf("sinceTime %q: want RFC 3339", v)
		}
		opts.Since = t
	}
	return opts, previous, nil
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) { return f.w.Write(p) }

func (f flushWriter) Flush() {
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
}
