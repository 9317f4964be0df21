package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// logTail is how much of a log a page starts with.
const logTail = "500"

// podLog streams a container's log as server-sent events, a line each with
// its time as the event's id, following it as kubectl logs -f does. When
// the stream breaks while the container still runs (the agent or the API
// let go), it picks up after the last line sent; a browser that reconnects
// does the same from its Last-Event-ID. It ends, with an "end" event, when
// the container stops.
func (v *View) podLog(w http.ResponseWriter, r *request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if !validName(ns, name) {
		http.NotFound(w, r.Request)
		return
	}
	container := r.URL.Query().Get("container")
	last, _ := time.Parse(time.RFC3339Nano, r.Header.Get("Last-Event-ID"))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	out := &sse{w: w, rc: rc}
	event := func(name, data string) { out.event(name, data) } // the last words: whether they arrive changes nothing
	ctx := r.Context()
	for attempt := 0; ; attempt++ {
		q := url.Values{"follow": {"true"}, "timestamps": {"true"}}
		if container != "" {
			q.Set("container", container)
		}
		if last.IsZero() {
			q.Set("tailLines", logTail)
		} else {
			q.Set("sinceTime", last.Format(time.RFC3339Nano))
		}
		body, err := r.api.stream(ctx, objectPath(podsRes, ns, name)+"/log", q)
		switch {
		case errors.Is(err, errSignedOut):
			event("signedout", "")
			return
		case err != nil && attempt == 0:
			event("failed", err.Error())
			return
		case err == nil:
			var gone bool
			last, gone = sendLines(w, rc, body, last)
			body.Close()
			if gone {
				return
			}
		}
		if !running(ctx, r.api, ns, name, container) {
			event("end", "")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// maxLine bounds a line sent as one event; a longer one goes in pieces.
const maxLine = 64 << 10

// sendLines sends each line of a log read with timestamps and returns the
// time of the last line sent and whether the client went. A stream read
// again from last (sinceTime) starts with lines sent already: those up to
// last are skipped until the first later one, and none after it, so lines
// with one time, or a clock stepped back, lose nothing.
func sendLines(w io.Writer, rc *http.ResponseController, body io.Reader, last time.Time) (time.Time, bool) {
	br := bufio.NewReaderSize(body, maxLine)
	catchingUp := !last.IsZero()
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 {
			line := strings.TrimSuffix(string(b), "\n")
			stamp, text, _ := strings.Cut(line, " ")
			t, perr := time.Parse(time.RFC3339Nano, stamp)
			if catchingUp && perr == nil && !t.After(last) {
				continue
			}
			catchingUp = false
			var werr error
			if perr == nil {
				last = t
				_, werr = fmt.Fprintf(w, "id: %s\ndata: %s\n\n", stamp, oneLine(text))
			} else { // a line with no time, or the rest of a long one: as it is
				_, werr = fmt.Fprintf(w, "data: %s\n\n", oneLine(line))
			}
			if werr != nil {
				return last, true
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return last, false
		}
		if br.Buffered() == 0 && rc.Flush() != nil {
			return last, true
		}
	}
}

// running says whether the pod's container (its first, when none is
// named) runs now.
func running(ctx context.Context, api *client, ns, name, container string) bool {
	obj, err := api.object(ctx, podsRes, ns, name)
	pod, ok := obj.(*corev1.Pod)
	if err != nil || !ok || pod.DeletionTimestamp != nil {
		return false
	}
	if container == "" && len(pod.Spec.Containers) > 0 {
		container = pod.Spec.Containers[0].Name
	}
	for _, s := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
		if s.Name == container {
			return s.State.Running != nil
		}
	}
	return false
}

// oneLine keeps a line one event's data: a bare carriage return would end
// it early.
func oneLine(s string) string { return strings.NewReplacer("\r", "", "\n", " ").Replace(s) }
