package ui

import (
	"strings"
	"testing"
)

// FuzzParseWatch: whatever a page's URL says, a watch the view accepts is
// a collection of the API, never of secrets, with selectors alone.
func FuzzParseWatch(f *testing.F) {
	for _, s := range []string{"/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb@12", "/apis/apps/v1/deployments?@3",
		"/api/v1/secrets?@1", "/api/v1/namespaces/x/secrets%23@1", "/api/../ui/?@1", "@", "/api/v1/pods?watch=false&timeoutSeconds=1@9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := parseWatch(s)
		if err != nil {
			return
		}
		if !collection.MatchString(w.Path) || strings.HasSuffix(w.Path, "/secrets") || strings.Contains(w.Path, "..") {
			t.Fatalf("%q accepted as %q", s, w.Path)
		}
		for k := range w.Query {
			if k != "labelSelector" && k != "fieldSelector" {
				t.Fatalf("%q kept parameter %q", s, k)
			}
		}
	})
}

// FuzzSplitError: the parts of a split error put together are the message.
func FuzzSplitError(f *testing.F) {
	for _, s := range []string{"deploy/web.yaml:14:7: spec.replicas: must be an integer", "revision 1 not applied: a.yaml: bad", "fetch failed", ""} {
		f.Add(s)
	}
	gh, _ := forgeOf("https://github.com/acme/shop")
	f.Fuzz(func(t *testing.T, msg string) {
		e := splitError(msg, gh, true, "r")
		whole := e.Before + e.File + e.Rest
		if e.File != "" {
			at := e.File
			if e.Line != "" {
				at += ":" + e.Line
			}
			if !strings.HasPrefix(msg[len(e.Before):], at) || !strings.HasSuffix(msg, e.Rest) {
				t.Fatalf("%q split as %+v", msg, e)
			}
			return
		}
		if whole != msg {
			t.Fatalf("%q split as %+v", msg, e)
		}
	})
}
