package apiserver

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

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
	start := watchStart{from: o.rvNum}
	switch {
	case o.initial || o.rv == "":
		// With no version, a watch starts with the current state, as fresh
		// as a quorum read; so does a watch-list (sendInitialEvents).
		start.initial = true
		if o.rv == "" {
			err = c.waitFresh(r.Context())
		} else {
			err = s.waitNotOlder(r.Context(), c, o.rvNum)
		}
	case o.rv == "0":
		start.initial = true
		err = s.waitNotOlder(r.Context(), c, 0)
	default:
		err = s.waitNotOlder(r.Context(), c, o.rvNum)
	}
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
	sent := s.metrics.watchEvents.WithLabelValues(q.res.String())

	timeout := o.timeout
	if timeout <= 0 || timeout > maxWatchTimeout {
		timeout = maxWatchTimeout/2 + rand.N(maxWatchTimeout/2)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	interval := s.cfg.WatchCache.BookmarkInterval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	sw := &streamWriter{w: w, v: v}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	for _, e := range first {
		if typ, ok := cw.translate(e); ok && sw.event(typ, e.cur) != nil {
			return
		}
		sent.Inc()
	}
	if o.initial {
		if sw.bookmark(rv, true) != nil {
			return
		}
	}
	if sw.flush() != nil {
		return
	}
	lastBookmark := rv
	for {
		select {
		case e := <-cw.events:
			typ, ok := cw.translate(e)
			if !ok {
				continue
			}
			if sw.event(typ, e.cur) != nil {
				return
			}
			sent.Inc()
			// Write what is queued before flushing, to spare syscalls.
			for len(cw.events) > 0 && sw.buf.Len() < 1<<20 {
				e := <-cw.events
				if typ, ok := cw.translate(e); ok {
					if sw.event(typ, e.cur) != nil {
						return
					}
					sent.Inc()
				}
			}
			if sw.flush() != nil {
				return
			}
		case <-cw.done:
			// Events still queued came before the drop; send them first.
			for len(cw.events) > 0 {
				e := <-cw.events
				if typ, ok := cw.translate(e); ok {
					sw.event(typ, e.cur)
				}
			}
			sw.status(cw.err)
			sw.flush()
			return
		case <-ticker.C:
			if !o.bookmark {
				continue
			}
			if rv, ok := c.bookmarkRV(cw); ok && rv > lastBookmark {
				lastBookmark = rv
				if sw.bookmark(rv, false) != nil || sw.flush() != nil {
					return
				}
			}
		case <-timer.C:
			return
		case <-r.Context().Done():
			return
		}
	}
}

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
	if err != nil {
		return err
	}
	return http.NewResponseController(sw.w).Flush()
}
