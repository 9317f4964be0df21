package gitsync

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keelson/keelson/gitsync/notification"
	"github.com/keelson/keelson/store/etcdtest"
)

// fakeGitHub takes commit statuses as GitHub's API does and keeps them.
type fakeGitHub struct {
	mu       sync.Mutex
	statuses map[string][]map[string]string // by commit
	bad      []string
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sha, ok := strings.CutPrefix(r.URL.Path, "/repos/acme/deploy/statuses/")
	if r.Method != http.MethodPost || !ok || r.Header.Get("Authorization") != "Bearer t0ken" {
		f.bad = append(f.bad, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var body map[string]string
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.statuses[sha] = append(f.statuses[sha], body)
	w.WriteHeader(http.StatusCreated)
}

func (f *fakeGitHub) states(sha string) []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.statuses[sha]...)
}

func TestCommitStatusesOfSyncs(t *testing.T) {
	gh := &fakeGitHub{statuses: map[string][]map[string]string{}}
	srv := httptest.NewServer(gh)
	defer srv.Close()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := notification.New([]notification.Provider{{Name: "ci", Type: notification.GitHub, Address: srv.URL, TokenFile: token, Repository: "acme/deploy"}},
		notification.Options{Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	repo := newRepo(t)
	good := repo.commit(map[string]string{"cm.yaml": configMap("settings", "1")})
	syncs, err := NewSyncs([]Config{{Name: "apps", Repo: repo.dir, Interval: 20 * time.Millisecond}}, etcdtest.NewStore(t), testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	syncs.Notify = d.Notify
	syncs.Notifications = Notifications{Link: "https://keelson.example/syncs/{source}?revision={revision}"}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Run(ctx) })
	wg.Go(func() { _ = syncs.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	final := func(sha string) map[string]string {
		var last map[string]string
		eventually(t, "a final commit status for "+sha[:7], func() bool {
			s := gh.states(sha)
			if len(s) == 0 {
				return false
			}
			last = s[len(s)-1]
			return last["state"] != "pending"
		})
		return last
	}
	s := final(good)
	if s["state"] != "success" || s["context"] != "keelson/apps" || s["target_url"] != "https://keelson.example/syncs/apps?revision="+good {
		t.Errorf("status of the applied commit: %v", s)
	}
	if first := gh.states(good)[0]; first["state"] != "pending" {
		t.Errorf("first status of the commit is %v, want pending while it syncs", first)
	}
	bad := repo.commit(map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: [1]\n"})
	s = final(bad)
	if s["state"] != "failure" || !strings.Contains(s["description"], "not applied") {
		t.Errorf("status of the invalid commit: %v", s)
	}
	gh.mu.Lock()
	defer gh.mu.Unlock()
	if len(gh.bad) > 0 {
		t.Errorf("requests the fake refused: %v", gh.bad)
	}
}
