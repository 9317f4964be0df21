package notification

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestGitLab(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		edit func(*Event)
		want map[string]any
	}{
		{"success", func(e *Event) {}, map[string]any{
			"state": "success", "name": "keelson/apps", "description": "12 objects applied",
			"target_url": "https://keelson.example/syncs/apps",
		}},
		{"failure is failed", func(e *Event) { e.State, e.Severity, e.Link = StateFailure, SeverityError, "" }, map[string]any{
			"state": "failed", "name": "keelson/apps", "description": "12 objects applied",
		}},
		{"pending", func(e *Event) { e.State, e.Message = StatePending, "syncing" }, map[string]any{
			"state": "pending", "name": "keelson/apps", "description": "syncing",
			"target_url": "https://keelson.example/syncs/apps",
		}},
		{"long description cut to 255 characters", func(e *Event) { e.Message = long }, map[string]any{
			"state": "success", "name": "keelson/apps", "description": strings.Repeat("x", 254) + "…",
			"target_url": "https://keelson.example/syncs/apps",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			p := Provider{Name: "gitlab", Type: GitLab, Address: f.url("/api/v4"), TokenFile: writeFile(t, t.TempDir(), "token", "glpat-one\n")}
			opts, _ := testOptions(t)
			d := start(t, []Provider{p}, opts)
			e := event()
			e.URL = "ssh://git@gitlab.example:2222/platform/team/apps.git"
			tc.edit(&e)
			d.Notify(e)

			r := f.receive(t)
			checkRequest(t, r, http.MethodPost, "/api/v4/projects/platform%2Fteam%2Fapps/statuses/"+rev1, map[string]string{
				"PRIVATE-TOKEN": "glpat-one",
				"Content-Type":  "application/json",
				"User-Agent":    "keelson",
			})
			if got := r.header.Get("Authorization"); got != "" {
				t.Errorf("Authorization = %q, want none", got)
			}
			var got map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("body = %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestGitLabCannotTransitionIsDelivered(t *testing.T) {
	f := newFake(t,
		answer{code: http.StatusBadRequest, body: `{"message":"Cannot transition status via :run from :running"}`},
		answer{code: http.StatusBadRequest, body: `{"message":{"state":["is invalid"]}}`},
	)
	p := Provider{Name: "gitlab", Type: GitLab, Address: f.url(""), TokenFile: writeFile(t, t.TempDir(), "token", "glpat"), Repository: "group/project"}
	opts, logs := testOptions(t)
	d := start(t, []Provider{p}, opts)
	for _, rev := range []string{rev1, rev2, rev1} {
		e := event()
		e.Revision = rev
		d.Notify(e)
	}
	for _, want := range []string{rev1, rev2, rev1} {
		if r := f.receive(t); !strings.HasSuffix(r.path, want) {
			t.Errorf("path %s, want revision %s", r.path, want)
		}
	}
	if n := f.count(); n != 3 {
		t.Errorf("%d requests, want 3: no retries", n)
	}
	// Only the second 400 is a failure.
	if n := countLines(logs, "notification dropped"); n != 1 || !strings.Contains(logs.String(), "is invalid") {
		t.Errorf("want one dropped event, the second; logs:\n%s", logs)
	}
}

func TestAlreadySet(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"cannot transition", &statusError{code: 400, body: `{"message":"Cannot transition status via :enqueue from :pending"}`}, true},
		{"other 400", &statusError{code: 400, body: `{"message":"bad"}`}, false},
		{"same words, other status", &statusError{code: 500, body: "Cannot transition status"}, false},
		{"network", errors.New("connection refused"), false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := alreadySet(tc.err); got != tc.want {
				t.Errorf("alreadySet = %v, want %v", got, tc.want)
			}
		})
	}
}
