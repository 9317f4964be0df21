package gitsync

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// hookSetup is three syncs behind a Webhook: apps (a Git repository, with a
// secret, polled only every hour and without change notifications, so only a
// hook makes it sync early), open (no secret) and held (suspended).
type hookSetup struct {
	st     *store.Store
	repo   *testRepo
	syncs  *Syncs
	apps   *Loop
	secret string // path of apps' secret file
	hook   *Webhook
}

func newHookSetup(t *testing.T) *hookSetup {
	t.Helper()
	h := &hookSetup{st: etcdtest.NewStore(t), repo: newRepo(t)}
	h.repo.commit(map[string]string{"a.yaml": configMap("a", "1")})
	dir := t.TempDir()
	h.secret = filepath.Join(dir, "apps.secret")
	writeSecret(t, h.secret, "s3cret\n")
	var err error
	h.syncs, err = NewSyncs([]Config{
		{Name: "apps", Repo: h.repo.dir, Ref: "main", Interval: time.Hour, Prune: true, WebhookSecretFile: h.secret},
		{Name: "open", Repo: t.TempDir(), Interval: time.Hour},
		{Name: "held", Repo: t.TempDir(), Interval: time.Hour, Suspend: true, WebhookSecretFile: h.secret},
	}, h.st, testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.apps, _ = h.syncs.Loop("apps")
	h.apps.Source = pollOnly{h.apps.Source}
	h.hook = &Webhook{Syncs: h.syncs}
	return h
}

// serve runs the webhook on one request.
func (h *hookSetup) serve(t *testing.T, method, sync string, body []byte, hdr map[string]string) (int, HookResponse) {
	t.Helper()
	req := httptest.NewRequest(method, HookPrefix+sync, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.hook.ServeHTTP(rec, req)
	var out HookResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: %d with a body that is not a HookResponse (%v): %s", method, sync, rec.Code, err, rec.Body)
	}
	return rec.Code, out
}

// requested returns the RequestedAtAnnotation of the named Sync object, ""
// when it has none or there is no such object.
func (h *hookSetup) requested(t *testing.T, name string) string {
	t.Helper()
	o := &keelsonv1alpha1.Sync{}
	if err := h.st.Get(t.Context(), "", name, o); errors.Is(err, store.ErrNotFound) {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	return o.Annotations[RequestedAtAnnotation]
}

// url serves the webhook over HTTP until the test ends and returns its
// /hooks/ URL.
func (h *hookSetup) url(t *testing.T) string {
	srv := httptest.NewServer(h.hook)
	t.Cleanup(srv.Close)
	return srv.URL + HookPrefix
}

func writeSecret(t *testing.T, path, secret string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
}

// post sends a hook and returns the status code and decoded answer.
func post(t *testing.T, method, url string, body []byte, hdr map[string]string) (int, HookResponse) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out HookResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d with a body that is not a HookResponse: %v", method, url, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

const pushBody = `{"ref":"refs/heads/main","after":"0123"}`

func github(secret, event string, body []byte) map[string]string {
	return map[string]string{HeaderGitHubSignature: SignHook([]byte(secret), body), HeaderGitHubEvent: event}
}

func TestWebhookGitHubPushSyncsAtOnce(t *testing.T) {
	h := newHookSetup(t)
	runSyncs(t, h.syncs)
	until(t, "first sync", func() bool { v, _ := configMapValue(t, h.st, "a"); return v == "1" })

	h.repo.commit(map[string]string{"a.yaml": configMap("a", "2")})
	code, resp := post(t, http.MethodPost, h.url(t)+"apps", []byte(pushBody), github("s3cret", "push", []byte(pushBody)))
	if code != http.StatusAccepted || !resp.Triggered || resp.Sync != "apps" {
		t.Fatalf("push: %d %+v", code, resp)
	}
	// The loop polls hourly and gets no change notifications: only the hook
	// can have made it sync the second commit.
	until(t, "the pushed commit synced", func() bool { v, _ := configMapValue(t, h.st, "a"); return v == "2" })
}

func TestWebhookGitLabPushSyncsAtOnce(t *testing.T) {
	h := newHookSetup(t)
	runSyncs(t, h.syncs)
	until(t, "first sync", func() bool { v, _ := configMapValue(t, h.st, "a"); return v == "1" })
	h.repo.commit(map[string]string{"a.yaml": configMap("a", "2")})
	code, resp := post(t, http.MethodPost, h.url(t)+"apps", []byte(pushBody), map[string]string{HeaderGitLabToken: "s3cret", "X-Gitlab-Event": "Push Hook"})
	if code != http.StatusAccepted || !resp.Triggered {
		t.Fatalf("push: %d %+v", code, resp)
	}
	until(t, "the pushed commit synced", func() bool { v, _ := configMapValue(t, h.st, "a"); return v == "2" })
}

// TestWebhookAnswers checks each answer without running the loops: a hook
// that triggers leaves a pending trigger on the loop, one that does not
// leaves none.
func TestWebhookAnswers(t *testing.T) {
	body := []byte(pushBody)
	big := bytes.Repeat([]byte("x"), MaxHookBody+1)
	tests := []struct {
		name     string
		method   string
		sync     string
		body     []byte
		hdr      map[string]string
		code     int
		message  string
		triggers bool
	}{
		{"github push", "POST", "apps", body, github("s3cret", "push", body), 202, `sync "apps" triggered`, true},
		{"gitlab push", "POST", "apps", body, map[string]string{HeaderGitLabToken: "s3cret"}, 202, "triggered", true},
		{"github ping", "POST", "apps", body, github("s3cret", "ping", body), 200, "pong", false},
		{"wrong secret", "POST", "apps", body, github("guess", "push", body), 401, "does not match the body", false},
		{"body changed", "POST", "apps", []byte(pushBody + " "), github("s3cret", "push", body), 401, "does not match", false},
		{"not hex", "POST", "apps", body, map[string]string{HeaderGitHubSignature: "sha256=zz"}, 401, "is not sha256=<hex>", false},
		{"sha1 signature", "POST", "apps", body, map[string]string{HeaderGitHubSignature: "sha1=00"}, 401, "is not sha256=<hex>", false},
		{"wrong gitlab token", "POST", "apps", body, map[string]string{HeaderGitLabToken: "s3cre"}, 401, "is not the sync's webhook secret", false},
		{"no signature", "POST", "apps", body, nil, 401, "no X-Hub-Signature-256 or X-Gitlab-Token", false},
		{"unknown sync", "POST", "nope", body, github("s3cret", "push", body), 404, `no sync named "nope"`, false},
		{"nested path", "POST", "apps/x", body, github("s3cret", "push", body), 404, "no sync named", false},
		{"get", "GET", "apps", nil, nil, 405, "POST requests, not GET", false},
		{"too big", "POST", "apps", big, github("s3cret", "push", big), 413, "over 1048576 bytes", false},
		{"no secret", "POST", "open", body, github("s3cret", "push", body), 403, "has no webhook secret", false},
		{"suspended", "POST", "held", body, github("s3cret", "push", body), 409, "is suspended", false},
		{"suspended, wrong secret", "POST", "held", body, github("guess", "push", body), 401, "does not match", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookSetup(t)
			code, resp := h.serve(t, tc.method, tc.sync, tc.body, tc.hdr)
			if code != tc.code || !strings.Contains(resp.Message, tc.message) || resp.Triggered != tc.triggers {
				t.Errorf("%d %+v, want %d with %q, triggered %v", code, resp, tc.code, tc.message, tc.triggers)
			}
			// The syncs do not run in this process (another server leads):
			// an accepted hook is passed on through the Sync object.
			if requested := h.requested(t, "apps") != ""; requested != tc.triggers {
				t.Errorf("sync requested: %v, want %v", requested, tc.triggers)
			}
		})
	}
}

func TestWebhookReadsTheSecretAtEachRequest(t *testing.T) {
	h := newHookSetup(t)
	body := []byte(pushBody)
	if code, _ := h.serve(t, "POST", "apps", body, github("s3cret", "push", body)); code != http.StatusAccepted {
		t.Fatalf("first secret: %d", code)
	}
	writeSecret(t, h.secret, "rotated")
	if code, _ := h.serve(t, "POST", "apps", body, github("s3cret", "push", body)); code != http.StatusUnauthorized {
		t.Errorf("old secret after rotation: %d, want 401", code)
	}
	if code, _ := h.serve(t, "POST", "apps", body, github("rotated", "push", body)); code != http.StatusAccepted {
		t.Errorf("new secret: %d, want 202", code)
	}
	if err := os.Remove(h.secret); err != nil {
		t.Fatal(err)
	}
	code, resp := h.serve(t, "POST", "apps", body, github("rotated", "push", body))
	if code != http.StatusInternalServerError || strings.Contains(resp.Message, "rotated") {
		t.Errorf("secret file gone: %d %+v", code, resp)
	}
}
