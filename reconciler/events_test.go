package reconciler

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func listEvents(t *testing.T, st *store.Store) []*corev1.Event {
	t.Helper()
	l, err := st.List(t.Context(), mustResource("events"), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*corev1.Event
	for _, o := range l.Items {
		out = append(out, o.(*corev1.Event))
	}
	return out
}

func TestRecorderDeduplicatesAndExpires(t *testing.T) {
	st := etcdtest.NewStore(t)
	rs := newRS("web", 1)
	if err := st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(st, "test", testLog())
	for range 3 {
		rec.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "quota %s exceeded", "pods")
	}
	rec.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created %d pods", 1)
	for len(rec.ch) > 0 {
		if err := rec.write(t.Context(), <-rec.ch); err != nil {
			t.Fatal(err)
		}
	}
	evs := listEvents(t, st)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2 (repeats folded)", len(evs))
	}
	for _, ev := range evs {
		want := int32(1)
		if ev.Reason == "FailedCreate" {
			want = 3
		}
		if ev.Count != want || ev.InvolvedObject.Kind != "ReplicaSet" || ev.InvolvedObject.UID != rs.UID || ev.Source.Component != "test" {
			t.Errorf("event %s: count %d (want %d), involved %+v", ev.Reason, ev.Count, want, ev.InvolvedObject)
		}
	}
	// A fresh recorder (another leader) keeps counting on the stored event.
	rec2 := NewRecorder(st, "test", testLog())
	rec2.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "quota %s exceeded", "pods")
	if err := rec2.write(t.Context(), <-rec2.ch); err != nil {
		t.Fatal(err)
	}
	for _, ev := range listEvents(t, st) {
		if ev.Reason == "FailedCreate" && ev.Count != 4 {
			t.Errorf("count after another recorder: %d, want 4", ev.Count)
		}
	}
	if err := expireEventsOnce(t.Context(), st, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := len(listEvents(t, st)); n != 2 {
		t.Fatalf("fresh events expired: %d left", n)
	}
	if err := expireEventsOnce(t.Context(), st, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := len(listEvents(t, st)); n != 0 {
		t.Fatalf("%d old events not expired", n)
	}
}

func TestControllersWriteEvents(t *testing.T) {
	env := newTestEnv(t)
	rs := newRS("web", 2)
	if err := env.st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	waitRS(t, env, "web", 2)
	eventually(t, "a SuccessfulCreate event about the replicaset", func() (bool, string) {
		for _, ev := range listEvents(t, env.st) {
			if ev.Reason == "SuccessfulCreate" && ev.InvolvedObject.Name == "web" && ev.Type == corev1.EventTypeNormal {
				return true, ""
			}
		}
		return false, "none yet"
	})
}

// TestRecorderDropsLogSparingly: a full backlog drops events with one log
// line per period, counting what was dropped.
func TestRecorderDropsLogSparingly(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := NewRecorder(nil, "test", log)
	r.ch = make(chan *corev1.Event, 1)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	pod := testPod("p")
	for i := range 5 {
		r.Eventf(pod, corev1.EventTypeNormal, "Test", "event %d", i)
	}
	if got := strings.Count(buf.String(), "events dropped"); got != 1 {
		t.Fatalf("%d log lines for 4 drops within a period, want 1:\n%s", got, buf.String())
	}
	now = now.Add(dropLogEvery + time.Second)
	r.Eventf(pod, corev1.EventTypeNormal, "Test", "event 5")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "count=4") {
		t.Fatalf("after the period: want a second line counting 4 drops, got:\n%s", buf.String())
	}
}
