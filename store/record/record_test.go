package record

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func eventsResource(t *testing.T) store.Resource {
	t.Helper()
	r, err := store.ResourceByName("events")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func listEvents(t *testing.T, st *store.Store) []*corev1.Event {
	t.Helper()
	l, err := st.List(t.Context(), eventsResource(t), store.ListOptions{})
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
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	if err := st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	rec := New(st, "test", testLog())
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
	rec2 := New(st, "test", testLog())
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

// TestRecorderDropsLogSparingly: a full backlog drops events with one log
// line per period, counting what was dropped.
func TestRecorderDropsLogSparingly(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := New(nil, "test", log)
	r.ch = make(chan *corev1.Event, 1)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u1"}}
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
