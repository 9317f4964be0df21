package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// maxWatchTimeout ends every watch eventually, so that clients reconnect and
// load spreads; a watch without timeoutSeconds lasts 30 to 60 minutes.
const maxWatchTimeout = time.Hour

func (s *Server) watch(w http.ResponseWriter, r *http.Request, q *request, v *view) {
	o, err := parseReadOptions(q, r.URL.Query())
	if err != nil {
		writeStatus(w, err)
		return
	}
	c := s.cacheFor(q.res)
	start, err := s.watchStart(r, c, o)
	if err != nil {
		writeStatus(w, statusError(err, q.groupResource(), q.name))
		return
	}
	cw, first, rv, err := c.watch(r.Context(), start, o.matcher(q))
	if err != nil {
		writeStatus(w, statusError(err, q.groupResource(), q.name))
		return
	}
	defer c.stop(cw)
	gauge := s.metrics.watchers.WithLabelValues(q.res.String())
	gauge.Inc()
	defer gauge.Dec()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	st := &stream{sw: &streamWriter{w: w, v: v}, c: c, cw: cw, sent: s.metrics.watchEvents.WithLabelValues(q.res.String())}
	for _, e := range first {
		if st.send(e) != nil {
			return
		}
		// The current state of a large kind is hundreds of megabytes: it
		// goes out as it is written, not gathered first.
		if st.sw.buf.Len() >= flushAt && st.sw.flush() != nil {
			return
		}
	}
	if o.initial && st.sw.bookmark(rv, true) != nil {
		return
	}
	if st.sw.flush() != nil {
		return
	}
	st.run(r.Context(), s.watchTimeout(o), s.bookmarkInterval(), o.bookmark, rv)
}

// watchStart resolves where a watch begins, waiting for the cache to be as
// fresh as the request asks.
func (s *Server) watchStart(r *http.Request, c *cache, o *readOptions) (watchStart, error) {
	start := watchStart{from: o.rvNum}
	switch {
	case o.initial || o.rv == "":
		// With no version, a watch starts with the current state, as fresh
		// as a quorum read; so does a watch-list (sendInitialEvents).
		start.initial = true
		if o.rv == "" {
			return start, c.waitFresh(r.Context())
		}
		return start, s.waitNotOlder(r.Context(), c, o.rvNum)
	case o.rv == "0":
		start.initial = true
		return start, s.waitNotOlder(r.Context(), c, 0)
	}
	return start, s.waitNotOlder(r.Context(), c, o.rvNum)
}

func (s *Server) watchTimeout(o *readOptions) time.Duration {
	if o.timeout <= 0 || o.timeout > maxWatchTimeout {
		return maxWatchTimeout/2 + rand.N(maxWatchTimeout/2)
	}
	return o.timeout
}

func (s *Server) bookmarkInterval() time.Duration {
	if i := s.cfg.WatchCache.BookmarkInterval; i > 0 {
		return i
	}
	return 30 * time.Second
}

// stream is one client watch being written out.
type stream struct {
	sw   *streamWriter
	c    *cache
	cw   *watcher
	sent prometheus.Counter
}

// send writes e as this watcher sees it, if it sees it at all.
func (st *stream) send(e event) error {
	typ, ok := st.cw.translate(e)
	if !ok {
		return nil
	}
	if err := st.sw.event(typ, e.cur); err != nil {
		return err
	}
	st.sent.Inc()
	return nil
}

// run writes events until the client leaves, the timeout passes, or the cache
// drops the watch (then with an ERROR event saying why).
func (st *stream) run(ctx context.Context, timeout, bookmarkEvery time.Duration, bookmarks bool, lastBookmark int64) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	ticker := time.NewTicker(bookmarkEvery)
	defer ticker.Stop()
	for {
		select {
		case e := <-st.cw.events:
			if st.send(e) != nil {
				return
			}
			// Write what is queued before flushing, to spare syscalls.
			for len(st.cw.events) > 0 && st.sw.buf.Len() < flushAt {
				if st.send(<-st.cw.events) != nil {
					return
				}
			}
			if st.sw.flush() != nil {
				return
			}
		case <-st.cw.done:
			// Events still queued came before the drop; send them first.
			for len(st.cw.events) > 0 {
				st.send(<-st.cw.events)
			}
			st.sw.status(st.cw.err)
			st.sw.flush()
			return
		case <-ticker.C:
			if !bookmarks {
				continue
			}
			if rv, ok := st.c.bookmarkRV(st.cw); ok && rv > lastBookmark {
				lastBookmark = rv
				if st.sw.bookmark(rv, false) != nil || st.sw.flush() != nil {
					return
				}
			}
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// flushAt is how much a watch stream gathers before it writes.
const flushAt = 1 << 20

// streamWriter writes watch events as JSON lines, buffering until flush.
type streamWriter struct {
	w   http.ResponseWriter
	v   *view
	buf bytes.Buffer
	err error
}

func (sw *streamWriter) event(typ watch.EventType, e *entry) error {
	var obj []byte
	var err error
	if sw.v.table {
		t, terr := sw.v.tableOf([]*entry{e})
		if terr != nil {
			return terr
		}
		t.ResourceVersion = e.obj.GetResourceVersion()
		obj, err = json.Marshal(t)
	} else {
		obj, err = sw.v.raw(e)
	}
	if err != nil {
		return err
	}
	sw.buf.WriteString(`{"type":"`)
	sw.buf.WriteString(string(typ))
	sw.buf.WriteString(`","object":`)
	sw.buf.Write(obj)
	sw.buf.WriteString("}\n")
	return nil
}

// bookmark writes a BOOKMARK: an object of the kind with only its
// resourceVersion, marking the end of the initial events when initialEnd.
func (sw *streamWriter) bookmark(rv int64, initialEnd bool) error {
	meta := map[string]any{"resourceVersion": strconv.FormatInt(rv, 10)}
	if initialEnd {
		meta["annotations"] = map[string]string{metav1.InitialEventsAnnotationKey: "true"}
	}
	obj, err := json.Marshal(map[string]any{
		"kind": sw.v.res.GVK.Kind, "apiVersion": sw.v.res.GVK.GroupVersion().String(), "metadata": meta,
	})
	if err != nil {
		return err
	}
	sw.buf.WriteString(`{"type":"BOOKMARK","object":`)
	sw.buf.Write(obj)
	sw.buf.WriteString("}\n")
	return nil
}

func (sw *streamWriter) status(se *apierrors.StatusError) {
	st := se.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	b, _ := json.Marshal(map[string]any{"type": "ERROR", "object": &st})
	sw.buf.Write(b)
	sw.buf.WriteByte('\n')
}

func (sw *streamWriter) flush() error {
	_, err := sw.w.Write(sw.buf.Bytes())
	sw.buf.Reset()
	if sw.buf.Cap() > 4*flushAt {
		// One large object made it grow: let it go rather than hold it
		// for the watch's life.
		sw.buf = bytes.Buffer{}
	}
	if err != nil {
		return err
	}
	return http.NewResponseController(sw.w).Flush()
}
