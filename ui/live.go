package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// watch is one collection a page shows, and the resourceVersion it was
// read at: a watch from there misses no change made since.
type watch struct {
	Path  string // /api/v1/namespaces/shop/pods
	Query url.Values
	RV    string
}

func watchOf(path string, q url.Values, rv string) watch { return watch{Path: path, Query: q, RV: rv} }

// liveURL is the URL of a page's stream of changes: each watch as
// path?query@resourceVersion.
func liveURL(ws ...watch) string {
	q := url.Values{}
	for _, w := range ws {
		if w.RV == "" {
			continue
		}
		q.Add("w", w.Path+"?"+w.Query.Encode()+"@"+w.RV)
	}
	if len(q) == 0 {
		return ""
	}
	return "/ui/live?" + q.Encode()
}

// parseWatch reads one w parameter back, refusing anything but a
// collection of the resource API, and secrets, whose changes the view has
// no business following.
func parseWatch(s string) (watch, error) {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return watch{}, fmt.Errorf("watch %q: no @resourceVersion", s)
	}
	u, err := url.Parse(s[:at])
	if err != nil {
		return watch{}, fmt.Errorf("watch %q: %w", s, err)
	}
	if u.Host != "" || u.Scheme != "" || !(strings.HasPrefix(u.Path, "/api/") || strings.HasPrefix(u.Path, "/apis/")) ||
		strings.Contains(u.Path, "..") {
		return watch{}, fmt.Errorf("watch %q: not a collection of the API", s)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "secrets" {
			return watch{}, fmt.Errorf("watch %q: the view does not follow secrets", s)
		}
	}
	return watch{Path: u.Path, Query: u.Query(), RV: s[at+1:]}, nil
}

// liveDelay gathers a burst of changes (a rollout's dozens of pod updates)
// into one refresh of the page.
const liveDelay = 150 * time.Millisecond

// live streams, as server-sent events, "changed" when an object the page
// shows changes, and "resync" when a watch ended and the page must be read
// again from a newer resourceVersion. The browser then fetches the page's
// main element again: watches, not polling, drive it.
func (v *View) live(w http.ResponseWriter, r *request) {
	raw := r.URL.Query()["w"]
	if len(raw) == 0 || len(raw) > maxWatches+1 {
		http.Error(w, fmt.Sprintf("want 1 to %d watches", maxWatches+1), http.StatusBadRequest)
		return
	}
	ws := make([]watch, 0, len(raw))
	for _, s := range raw {
		wt, err := parseWatch(s)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ws = append(ws, wt)
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	changed := make(chan struct{}, 1)
	ended := make(chan error, len(ws))
	var wg sync.WaitGroup
	for _, wt := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ended <- follow(ctx, r.api, wt, changed)
		}()
	}
	defer wg.Wait()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	send := func(event string) bool {
		if _, err := fmt.Fprintf(w, "event: %s\ndata: \n\n", event); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("open") {
		return
	}
	keepAlive := time.NewTicker(25 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-ended:
			if err == errSignedOut {
				send("signedout")
			} else {
				send("resync")
			}
			return
		case <-changed:
			select { // gather the rest of the burst
			case <-time.After(liveDelay):
			case <-ctx.Done():
				return
			}
			if !send("changed") {
				return
			}
		case <-keepAlive.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// follow watches one collection from its resourceVersion and signals
// changed for each change, until the watch ends.
func follow(ctx context.Context, api *client, wt watch, changed chan<- struct{}) error {
	q := url.Values{}
	for k, vs := range wt.Query {
		q[k] = vs
	}
	q.Set("watch", "true")
	q.Set("resourceVersion", wt.RV)
	q.Set("allowWatchBookmarks", "true")
	body, err := api.stream(ctx, wt.Path, q)
	if err != nil {
		return err
	}
	defer body.Close()
	dec := json.NewDecoder(body)
	for {
		var ev struct {
			Type string `json:"type"`
		}
		if err := dec.Decode(&ev); err != nil {
			return err
		}
		switch ev.Type {
		case "BOOKMARK":
			continue
		case "ERROR":
			return fmt.Errorf("watch %s ended", wt.Path)
		}
		select {
		case changed <- struct{}{}:
		default:
		}
	}
}
