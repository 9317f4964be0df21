package pod

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestTokenRotateAt(t *testing.T) {
	issued := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		expires time.Time
		want    time.Duration // after issued
	}{
		{"80% of its lifetime", issued.Add(3607 * time.Second), 2885600 * time.Millisecond},
		{"a day at the latest", issued.Add(365 * 24 * time.Hour), 24 * time.Hour},
		{"an expiry past the longest duration", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 24 * time.Hour},
		{"expired when issued (clocks apart): at once", issued.Add(-time.Minute), -48 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := token{issued: issued, expires: tc.expires}
			if got := tok.rotateAt().Sub(issued); got != tc.want {
				t.Errorf("rotation %v after issue, want %v", got, tc.want)
			}
		})
	}
}

// tokenCounter hands out tokens of a lifetime, counting the requests; an
// empty value when empty is set.
type tokenCounter struct {
	serviceList
	clock    *clocktesting.FakePassiveClock
	life     time.Duration
	empty    bool
	requests int
}

func (c *tokenCounter) ServiceAccountToken(context.Context, *corev1.Pod, []string, int64) (string, time.Time, error) {
	c.requests++
	if c.empty {
		return "", time.Time{}, nil
	}
	return "t", c.clock.Now().Add(c.life), nil
}

func tokenRunner(c *tokenCounter) *Runner {
	return &Runner{cfg: Config{Lookup: c, Clock: c.clock}, log: slog.New(slog.DiscardHandler), pods: map[types.UID]*podRunner{}}
}

// TestTokensGoWithTheirPod: a pod's tokens live in its runner, so a pod
// synced again after its runner was dropped asks for a new one.
func TestTokensGoWithTheirPod(t *testing.T) {
	c := &tokenCounter{clock: clocktesting.NewFakePassiveClock(time.Now()), life: time.Hour}
	r := tokenRunner(c)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "uid-p"}}
	src := &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3600)}
	for range 2 {
		if _, err := r.serviceAccountToken(t.Context(), r.podRunner(p.UID), p, src); err != nil {
			t.Fatal(err)
		}
	}
	if c.requests != 1 {
		t.Fatalf("%d requests for one pod's token in two syncs, want 1", c.requests)
	}
	pr := r.podRunner(p.UID)
	r.dropPod(p.UID)
	if len(pr.tokens) != 0 {
		t.Errorf("a dropped pod's runner keeps %d tokens", len(pr.tokens))
	}
	if _, err := r.serviceAccountToken(t.Context(), r.podRunner(p.UID), p, src); err != nil {
		t.Fatal(err)
	}
	if c.requests != 2 {
		t.Errorf("%d requests after the pod's runner was dropped, want 2", c.requests)
	}
}

// TestTokenWithoutAWakeLoop: a token already expired when obtained (the
// server's clock ahead) or an empty answer never has the pod woken at once,
// which would ask the API again and again.
func TestTokenWithoutAWakeLoop(t *testing.T) {
	src := &corev1.ServiceAccountTokenProjection{Path: "token"}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "uid-p"}}

	c := &tokenCounter{clock: clocktesting.NewFakePassiveClock(time.Now()), life: -time.Minute}
	r := tokenRunner(c)
	pr := r.podRunner(p.UID)
	if _, err := r.serviceAccountToken(t.Context(), pr, p, src); err != nil {
		t.Fatal(err)
	}
	if !pr.wakeAt.IsZero() {
		t.Errorf("woken at %v for a token due at once", pr.wakeAt)
	}

	c = &tokenCounter{clock: clocktesting.NewFakePassiveClock(time.Now()), empty: true}
	r = tokenRunner(c)
	if _, err := r.serviceAccountToken(t.Context(), r.podRunner(p.UID), p, src); err == nil || !strings.Contains(err.Error(), "without a token") {
		t.Errorf("an empty token: %v, want an error", err)
	}
}

func TestSetUpBackoff(t *testing.T) {
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second}
	for n, w := range want {
		if got := setUpBackoff(n); got != w {
			t.Errorf("setUpBackoff(%d) = %v, want %v", n, got, w)
		}
	}
	if got := setUpBackoff(1000); got != 10*time.Second {
		t.Errorf("setUpBackoff(1000) = %v, want 10s", got)
	}
}
