package notification

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// githubHeaders are the headers every GitHub request carries with token.
func githubHeaders(token string) map[string]string {
	return map[string]string{
		"Accept":               "application/vnd.github+json",
		"X-GitHub-Api-Version": "2022-11-28",
		"Authorization":        "Bearer " + token,
		"Content-Type":         "application/json",
		"User-Agent":           "keelson",
	}
}

func TestGitHub(t *testing.T) {
	long := strings.Repeat("é", 200)
	tests := []struct {
		name     string
		provider Provider
		edit     func(*Event)
		path     string
		want     map[string]any
	}{
		{"success", Provider{}, func(e *Event) {}, "/repos/example/apps/statuses/" + rev1, map[string]any{
			"state": "success", "context": "keelson/apps", "description": "12 objects applied",
			"target_url": "https://keelson.example/syncs/apps",
		}},
		{"failure", Provider{}, func(e *Event) {
			e.State, e.Severity, e.Message = StateFailure, SeverityError, "health check failed: web 0/3 ready"
		}, "/repos/example/apps/statuses/" + rev1, map[string]any{
			"state": "failure", "context": "keelson/apps", "description": "health check failed: web 0/3 ready",
			"target_url": "https://keelson.example/syncs/apps",
		}},
		{"pending without link", Provider{}, func(e *Event) {
			e.State, e.Message, e.Link = StatePending, "syncing", ""
		}, "/repos/example/apps/statuses/" + rev1, map[string]any{
			"state": "pending", "context": "keelson/apps", "description": "syncing",
		}},
		{"long description cut to 140 characters", Provider{}, func(e *Event) { e.Message = long },
			"/repos/example/apps/statuses/" + rev1, map[string]any{
				"state": "success", "context": "keelson/apps", "description": strings.Repeat("é", 139) + "…",
				"target_url": "https://keelson.example/syncs/apps",
			}},
		{"repository and context set, enterprise base", Provider{Repository: "platform/cluster", Context: "deploy/prod"}, func(e *Event) {
			e.URL = "/srv/git/cluster"
		}, "/api/v3/repos/platform/cluster/statuses/" + rev1, map[string]any{
			"state": "success", "context": "deploy/prod", "description": "12 objects applied",
			"target_url": "https://keelson.example/syncs/apps",
		}},
		{"repository from an scp-like URL", Provider{}, func(e *Event) {
			e.URL = "git@github.com:other-org/other.repo.git"
		}, "/repos/other-org/other.repo/statuses/" + rev1, map[string]any{
			"state": "success", "context": "keelson/apps", "description": "12 objects applied",
			"target_url": "https://keelson.example/syncs/apps",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			p := tc.provider
			p.Name, p.Type = "github", GitHub
			p.Address = f.url("")
			if strings.HasPrefix(tc.path, "/api/v3/") {
				p.Address = f.url("/api/v3/")
			}
			p.TokenFile = writeFile(t, t.TempDir(), "token", "ghp_token1\n")
			opts, _ := testOptions(t)
			d := start(t, []Provider{p}, opts)
			e := event()
			tc.edit(&e)
			d.Notify(e)

			r := f.receive(t)
			checkRequest(t, r, http.MethodPost, tc.path, githubHeaders("ghp_token1"))
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

func TestCommitStatusSkipsEventsWithoutRevision(t *testing.T) {
	for _, typ := range []ProviderType{GitHub, GitLab} {
		t.Run(string(typ), func(t *testing.T) {
			f := newFake(t)
			p := Provider{Name: "forge", Type: typ, Address: f.url(""), TokenFile: writeFile(t, t.TempDir(), "token", "t"), Repository: "group/project"}
			opts, _ := testOptions(t)
			d := start(t, []Provider{p}, opts)
			dir := event()
			dir.Revision, dir.Message = "", "from a directory"
			d.Notify(dir)
			d.Notify(event())
			if r := f.receive(t); !strings.Contains(string(r.body), "12 objects applied") {
				t.Errorf("first request %s, want the Git event's", r.body)
			}
			if n := f.count(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestUnknownRepositoryDropped(t *testing.T) {
	f := newFake(t)
	p := Provider{Name: "github", Type: GitHub, Address: f.url(""), TokenFile: writeFile(t, t.TempDir(), "token", "ghp_x")}
	opts, logs := testOptions(t)
	d := start(t, []Provider{p}, opts)
	local := event()
	local.Source, local.URL = "local", "https://user:hunter2@git.example/only-one-segment"
	d.Notify(local)
	d.Notify(event())

	r := f.receive(t)
	if r.path != "/repos/example/apps/statuses/"+rev1 {
		t.Errorf("path = %s, want the second event's", r.path)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if countLines(logs, "notification dropped") != 1 || countLines(logs, "cannot tell the github repository of source local") != 1 {
		t.Errorf("want one line dropping the event, logs:\n%s", logs)
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Errorf("the URL's password is logged:\n%s", logs)
	}
}

func TestTokenFileReread(t *testing.T) {
	f := newFake(t)
	dir := t.TempDir()
	p := Provider{Name: "github", Type: GitHub, Address: f.url(""), TokenFile: writeFile(t, dir, "token", "ghp_first")}
	opts, _ := testOptions(t)
	d := start(t, []Provider{p}, opts)

	d.Notify(event())
	if got := f.receive(t).header.Get("Authorization"); got != "Bearer ghp_first" {
		t.Errorf("Authorization = %q, want the first token", got)
	}
	writeFile(t, dir, "token", "ghp_rotated\n")
	e := event()
	e.Revision = rev2
	d.Notify(e)
	if got := f.receive(t).header.Get("Authorization"); got != "Bearer ghp_rotated" {
		t.Errorf("Authorization = %q, want the rotated token", got)
	}
}
