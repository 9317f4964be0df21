package notification

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

func TestSlackText(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Event)
		want string
	}{
		{"success", func(e *Event) {},
			"✅ keelson: source apps applied 0123456: 12 objects applied <https://keelson.example/syncs/apps|details>"},
		{"failure", func(e *Event) {
			e.State, e.Reason, e.Message, e.Link = StateFailure, "ValidationFailed", "deploy/web.yaml:14:7: spec.replicas: must be an integer", ""
		}, "❌ keelson: source apps failed 0123456 (ValidationFailed): deploy/web.yaml:14:7: spec.replicas: must be an integer"},
		{"pending", func(e *Event) { e.State, e.Message, e.Link = StatePending, "", "" },
			"⏳ keelson: source apps syncing 0123456"},
		{"not git", func(e *Event) { e.Revision, e.Link = "", "" },
			"✅ keelson: source apps applied: 12 objects applied"},
		{"markup escaped", func(e *Event) {
			e.State, e.Reason, e.Message, e.Link = StateFailure, "HookFailed", "exit 1: a < b && c > d", "https://k.example/x?a=1|2>"
		}, "❌ keelson: source apps failed 0123456 (HookFailed): exit 1: a &lt; b &amp;&amp; c &gt; d <https://k.example/x?a=1%7C2%3E|details>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := event()
			tc.edit(&e)
			if got := slackText(e); got != tc.want {
				t.Errorf("slackText =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestSlackSkipsPending(t *testing.T) {
	f := newFake(t, answer{code: http.StatusOK, body: "ok"})
	p := Provider{Name: "chat", Type: Slack, AddressFile: writeFile(t, t.TempDir(), "url", f.url("/services/T0/B0/secret")+"\n")}
	opts, _ := testOptions(t)
	d := start(t, []Provider{p}, opts)

	pending := event()
	pending.State, pending.Message = StatePending, "syncing"
	d.Notify(pending)
	d.Notify(event())

	r := f.receive(t)
	checkRequest(t, r, http.MethodPost, "/services/T0/B0/secret", map[string]string{
		"Content-Type": "application/json",
		"User-Agent":   "keelson",
	})
	var got map[string]string
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	want := map[string]string{"text": slackText(event())}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body = %v, want %v (the pending event is not sent)", got, want)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
