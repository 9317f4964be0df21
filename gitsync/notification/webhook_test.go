package notification

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

func TestWebhook(t *testing.T) {
	tests := []struct {
		name string
		key  string // "" for no SecretFile
	}{
		{"unsigned", ""},
		{"signed", "s3cret-key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			p := Provider{Name: "hook", Type: Webhook, Address: f.url("/hooks/keelson")}
			if tc.key != "" {
				// A trailing newline, as editors leave, is not part of the key.
				p.SecretFile = writeFile(t, t.TempDir(), "key", tc.key+"\n")
			}
			opts, _ := testOptions(t)
			d := start(t, []Provider{p}, opts)
			e := event()
			e.State, e.Severity, e.Reason, e.Message = StateFailure, SeverityError, "HookFailed", "pre-sync hook migrate failed"
			d.Notify(e)

			r := f.receive(t)
			checkRequest(t, r, http.MethodPost, "/hooks/keelson", map[string]string{
				"Content-Type":    "application/json",
				"User-Agent":      "keelson",
				"X-Keelson-Event": "sync",
			})
			sig := r.header.Get(SignatureHeader)
			if tc.key == "" {
				if sig != "" {
					t.Errorf("%s = %q without a secret", SignatureHeader, sig)
				}
			} else {
				m := hmac.New(sha256.New, []byte(tc.key))
				m.Write(r.body)
				want := "sha256=" + hex.EncodeToString(m.Sum(nil))
				if !hmac.Equal([]byte(sig), []byte(want)) {
					t.Errorf("%s = %q, want %q", SignatureHeader, sig, want)
				}
			}
			var got map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			want := map[string]any{
				"source":   "apps",
				"url":      "https://github.com/example/apps.git",
				"revision": rev1,
				"state":    "failure",
				"severity": "error",
				"reason":   "HookFailed",
				"message":  "pre-sync hook migrate failed",
				"link":     "https://keelson.example/syncs/apps",
				"time":     "2025-03-04T05:06:07Z",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body = %v\nwant %v", got, want)
			}
		})
	}
}

func TestSign(t *testing.T) {
	// The example of GitHub's webhook documentation, whose scheme Sign follows.
	got := Sign([]byte("It's a Secret to Everybody"), []byte("Hello, World!"))
	want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

// checkRequest checks a request's method, escaped path and headers.
func checkRequest(t *testing.T, r received, method, path string, header map[string]string) {
	t.Helper()
	if r.method != method {
		t.Errorf("method = %s, want %s", r.method, method)
	}
	if r.path != path {
		t.Errorf("path = %s, want %s", r.path, path)
	}
	for k, v := range header {
		if got := r.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}
