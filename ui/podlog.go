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
	container := r.URL.Query().Get("container")
	last, _ := time.Parse(time.RFC3339Nano, r.Header.Get("Last-Event-ID"))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	event := func(name, data string) {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, oneLine(data))
		_ = rc.Flush()
	}
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
		if !v.running(ctx, r.api, ns, name, container) {
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

// sendLines sends each line of a log read with timestamps, after last,
// and returns the time of the last line sent and whether the client went.
func sendLines(w io.Writer, rc *http.ResponseController, body io.Reader, last time.Time) (time.Time, bool) {
	br := bufio.NewReaderSize(body, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			stamp, text, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
			t, perr := time.Parse(time.RFC3339Nano, stamp)
			if perr == nil && !t.After(last) {
				continue // sent before the stream broke
			}
			var werr error
			if perr == nil {
				last = t
				_, werr = fmt.Fprintf(w, "id: %s\ndata: %s\n\n", stamp, oneLine(text))
			} else { // a line with no time: as it is, with no id to resume from
				_, werr = fmt.Fprintf(w, "data: %s\n\n", oneLine(strings.TrimSuffix(line, "\n")))
			}
			if werr != nil {
				return last, true
			}
		}
		if err != nil {
			return last, false
		}
		if br.Buffered() == 0 && rc.Flush() != nil {
			return last, true
		}
	}
}

// running says whether the pod's container (its first, when none is
// named) runs now.
func (v *View) running(ctx context.Context, api *client, ns, name, container string) bool {
	obj, err := get(ctx, api, podsRes, ns, name)
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
