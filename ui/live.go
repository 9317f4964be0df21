package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
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

// collection matches the path of a collection of the resource API: a
// group (or the core API), a version, a namespace perhaps, a resource.
var collection = regexp.MustCompile(`^/(?:api/v1|apis/[a-z0-9.-]+/[a-z0-9]+)(?:/namespaces/[a-z0-9-]+)?/([a-z0-9.-]+)$`)

// watchParams are what a page may ask of a watch beside its collection.
var watchParams = []string{"labelSelector", "fieldSelector"}

// parseWatch reads one w parameter back, refusing anything but a
// collection of the resource API with selectors, and secrets, whose
// changes the view has no business following.
func parseWatch(s string) (watch, error) {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return watch{}, fmt.Errorf("watch %q: no @resourceVersion", s)
	}
	p, query, _ := strings.Cut(s[:at], "?")
	m := collection.FindStringSubmatch(p)
	if m == nil {
		return watch{}, fmt.Errorf("watch %q: not a collection of the API", s)
	}
	if m[1] == "secrets" {
		return watch{}, fmt.Errorf("watch %q: the view does not follow secrets", s)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return watch{}, fmt.Errorf("watch %q: %w", s, err)
	}
	wt := watch{Path: p, Query: url.Values{}, RV: s[at+1:]}
	for _, k := range watchParams {
		if v := q.Get(k); v != "" {
			wt.Query.Set(k, v)
		}
	}
	return wt, nil
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
	defer func() {
		cancel() // the other watches end with this stream
		wg.Wait()
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	stream(ctx, &sse{w: w, rc: http.NewResponseController(w)}, changed, ended)
}

// sse writes server-sent events.
type sse struct {
	w  io.Writer
	rc *http.ResponseController
}

// event sends one event with data, and says whether it reached the client.
func (s *sse) event(name, data string) bool {
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, oneLine(data)); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}

// stream tells the client of changes until a watch ends or the client
// goes.
func stream(ctx context.Context, out *sse, changed <-chan struct{}, ended <-chan error) {
	if !out.event("open", "") {
		return
	}
	keepAlive := time.NewTicker(25 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-ended:
			if errors.Is(err, errSignedOut) {
				out.event("signedout", "")
			} else {
				out.event("resync", "")
			}
			return
		case <-changed:
			select { // gather the rest of the burst
			case <-time.After(liveDelay):
			case <-ctx.Done():
				return
			}
			if !out.event("changed", "") {
				return
			}
		case <-keepAlive.C:
			if _, err := io.WriteString(out.w, ": keep-alive\n\n"); err != nil || out.rc.Flush() != nil {
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
