package notification

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestFilters(t *testing.T) {
	failure := event()
	failure.State, failure.Severity = StateFailure, SeverityError
	pending := event()
	pending.State = StatePending
	other := event()
	other.Source = "infra"
	tests := []struct {
		name string
		p    Provider
		e    Event
		want bool
	}{
		{"no filter", Provider{Type: Webhook}, event(), true},
		{"source listed", Provider{Type: Webhook, Sources: []string{"infra", "apps"}}, event(), true},
		{"source not listed", Provider{Type: Webhook, Sources: []string{"apps"}}, other, false},
		{"info takes info", Provider{Type: Webhook, Severity: SeverityInfo}, event(), true},
		{"error drops info", Provider{Type: Webhook, Severity: SeverityError}, event(), false},
		{"error takes error", Provider{Type: Webhook, Severity: SeverityError}, failure, true},
		{"both filters", Provider{Type: Webhook, Severity: SeverityError, Sources: []string{"apps"}}, failure, true},
		{"webhook takes pending", Provider{Type: Webhook}, pending, true},
		{"slack drops pending", Provider{Type: Slack}, pending, false},
		{"github takes pending", Provider{Type: GitHub}, pending, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &worker{p: tc.p, s: newSender(tc.p, nil)}
			if got := w.takes(tc.e); got != tc.want {
				t.Errorf("takes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFiltersDeliver(t *testing.T) {
	f := newFake(t)
	p := Provider{Name: "hook", Type: Webhook, Address: f.url("/"), Sources: []string{"apps"}, Severity: SeverityError}
	opts, _ := testOptions(t)
	d := start(t, []Provider{p}, opts)
	for _, e := range []Event{
		{Source: "infra", State: StateFailure, Message: "other source"},
		{Source: "apps", State: StateSuccess, Message: "info"},
		{Source: "apps", State: StateFailure, Message: "wanted"},
	} {
		d.Notify(e)
	}
	if r := f.receive(t); !strings.Contains(string(r.body), `"message":"wanted"`) {
		t.Errorf("first delivery %s, want the failure of apps", r.body)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestNotifyCompletesEvents(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   Event
		want Event
	}{
		{"failure is an error", Event{State: StateFailure}, Event{State: StateFailure, Severity: SeverityError, Time: now}},
		{"success is info", Event{State: StateSuccess}, Event{State: StateSuccess, Severity: SeverityInfo, Time: now}},
		{"pending is info", Event{State: StatePending}, Event{State: StatePending, Severity: SeverityInfo, Time: now}},
		{"set fields kept", Event{State: StateSuccess, Severity: SeverityError, Time: testTime}, Event{State: StateSuccess, Severity: SeverityError, Time: testTime}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.complete(now); got != tc.want {
				t.Errorf("complete = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRetryThenDelivered(t *testing.T) {
	f := newFake(t, answer{code: 500}, answer{code: 500})
	p := Provider{Name: "hook", Type: Webhook, Address: f.url("/")}
	opts, logs := testOptions(t)
	d := start(t, []Provider{p}, opts)
	d.Notify(event())
	for attempt := 1; attempt <= 3; attempt++ {
		if r := f.receive(t); !strings.Contains(string(r.body), rev1) {
			t.Errorf("attempt %d: body %s, want the event", attempt, r.body)
		}
	}
	// A second event fences the first: once it arrives, the first is done.
	second := event()
	second.Revision = rev2
	d.Notify(second)
	if r := f.receive(t); !strings.Contains(string(r.body), rev2) {
		t.Errorf("body %s, want the second event", r.body)
	}
	if n := f.count(); n != 4 {
		t.Errorf("%d requests, want 3 attempts and the second event", n)
	}
	if countLines(logs, "retrying") != 2 || countLines(logs, "notification dropped") != 0 {
		t.Errorf("want two retries and no drop; logs:\n%s", logs)
	}
}

func TestRetriedStatuses(t *testing.T) {
	tests := []struct {
		code    int
		retried bool
	}{
		{400, false}, {401, false}, {403, false}, {404, false}, {422, false},
		{408, true}, {429, true}, {500, true}, {502, true}, {503, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			f := newFake(t, answer{code: tc.code, body: "no"})
			p := Provider{Name: "hook", Type: Webhook, Address: f.url("/")}
			opts, logs := testOptions(t)
			d := start(t, []Provider{p}, opts)
			d.Notify(event())
			second := event()
			second.Revision = rev2
			d.Notify(second)

			want := 2 // the second event's request follows the first's
			if tc.retried {
				want = 3
			}
			for range want {
				f.receive(t)
			}
			if n := f.count(); n != want {
				t.Errorf("%d requests, want %d", n, want)
			}
			if dropped := countLines(logs, "notification dropped") == 1; dropped == tc.retried {
				t.Errorf("dropped = %v, want %v; logs:\n%s", dropped, !tc.retried, logs)
			}
		})
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	f := newFake(t, answer{code: 503}, answer{code: 503}, answer{code: 503})
	p := Provider{Name: "hook", Type: Webhook, Address: f.url("/")}
	opts, logs := testOptions(t)
	opts.MaxAttempts = 3
	d := start(t, []Provider{p}, opts)
	d.Notify(event())
	second := event()
	second.Revision = rev2
	d.Notify(second)
	for range 4 {
		f.receive(t)
	}
	if n := f.count(); n != 4 {
		t.Errorf("%d requests, want 3 attempts and the second event", n)
	}
	if countLines(logs, "notification dropped") != 1 || !strings.Contains(logs.String(), "attempts=3") {
		t.Errorf("want one drop after 3 attempts; logs:\n%s", logs)
	}
}

func TestQueueOverflowDropsOldest(t *testing.T) {
	f := newFake(t)
	p := Provider{Name: "hook", Type: Webhook, Address: f.url("/")}
	opts, logs := testOptions(t)
	opts.QueueSize = 2
	d, err := New([]Provider{p}, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing delivers yet: Notify must still return every time.
	for i := range 5 {
		e := event()
		e.Message = fmt.Sprint("event ", i)
		d.Notify(e)
	}
	if n := countLines(logs, "queue full"); n != 3 {
		t.Errorf("%d lines about a full queue, want 3; logs:\n%s", n, logs)
	}
	runUntilCleanup(t, d)
	for _, want := range []string{"event 3", "event 4"} {
		if r := f.receive(t); !strings.Contains(string(r.body), want) {
			t.Errorf("body %s, want %q", r.body, want)
		}
	}
	if n := f.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestRunStopsWithoutLeaks(t *testing.T) {
	tests := []struct {
		name string
		// answer is the endpoint's answer to the event.
		answer answer
		// reached is a log line that shows the worker is where the test
		// wants it when Run is stopped; "" when the request suffices.
		reached string
	}{
		{"while a request is in flight", answer{block: true}, ""},
		{"while backing off", answer{code: 500}, "retrying"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			f := newFake(t, tc.answer)
			defer f.srv.Close()
			opts, logs := testOptions(t)
			opts.Client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			opts.Backoff, opts.MaxBackoff = time.Hour, time.Hour
			busy := Provider{Name: "busy", Type: Webhook, Address: f.url("/busy")}
			idle := Provider{Name: "idle", Type: Webhook, Address: f.url("/idle"), Sources: []string{"none"}}
			d, err := New([]Provider{busy, idle}, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			d.Notify(event())
			f.receive(t)
			if tc.reached != "" {
				waitFor(t, func() bool { return countLines(logs, tc.reached) > 0 })
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
			if n := countLines(logs, "notification dropped"); n != 0 {
				t.Errorf("an event cut short by shutdown is logged as dropped:\n%s", logs)
			}
		})
	}
}

// waitFor polls cond until it holds. The deadline only keeps a broken test
// from hanging until the test binary's timeout.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSecretsStayOutOfLogs(t *testing.T) {
	closed := newFake(t)
	closed.srv.Close()
	f := newFake(t,
		answer{code: http.StatusUnauthorized, body: `{"message":"Bad credentials"}`},
		answer{code: http.StatusNotFound, body: "no such hook"},
	)
	dir := t.TempDir()
	providers := []Provider{
		{Name: "chat", Type: Slack, AddressFile: writeFile(t, dir, "slack", closed.url("/services/T0/B0/slack-secret"))},
		{Name: "github", Type: GitHub, Address: f.url(""), TokenFile: writeFile(t, dir, "token", "ghp_token-secret")},
		{Name: "hook", Type: Webhook, Address: f.url("/hook?token=query-secret"), SecretFile: writeFile(t, dir, "key", "hmac-secret")},
	}
	opts, logs := testOptions(t)
	opts.MaxAttempts = 2
	start(t, providers, opts).Notify(event())
	waitFor(t, func() bool { return countLines(logs, "notification dropped") == 3 })
	for _, secret := range []string{"slack-secret", "ghp_token-secret", "query-secret", "hmac-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs show %s:\n%s", secret, logs)
		}
	}
	for _, want := range []string{"Bad credentials", "no such hook", "connection refused"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"network", fmt.Errorf("%w: POST x: connection refused", ErrDelivery), true},
		{"unreadable token file", fmt.Errorf("%w: tokenFile: no such file", ErrDelivery), true},
		{"server error", &statusError{code: 502}, true},
		{"rate limited", &statusError{code: 429}, true},
		{"timeout", &statusError{code: 408}, true},
		{"bad request", &statusError{code: 400}, false},
		{"not found", &statusError{code: 404}, false},
		{"wrapped not found", fmt.Errorf("gitlab: %w", &statusError{code: 404}), false},
		{"permanent", permanent(errors.New("no repository")), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryable(tc.err); got != tc.want {
				t.Errorf("retryable = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStatusErrorMatchesErrDelivery(t *testing.T) {
	err := error(&statusError{shown: "https://h/x", code: 404, body: "gone"})
	if !errors.Is(err, ErrDelivery) {
		t.Error("statusError does not match ErrDelivery")
	}
	if want := "notification: delivery failed: POST https://h/x: 404 Not Found: gone"; err.Error() != want {
		t.Errorf("Error = %q, want %q", err, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := map[string]time.Duration{"": 0, "3": 3 * time.Second, "-1": 0, "Wed, 21 Oct 2015 07:28:00 GMT": 0}
	for in, want := range tests {
		if got := parseRetryAfter(in); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestNilDispatcher(t *testing.T) {
	var d *Dispatcher
	d.Notify(event())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}
