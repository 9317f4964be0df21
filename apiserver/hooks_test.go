package apiserver_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHooksNeedNoToken: paths under /hooks/ go to Config.Hooks, which
// authenticates them itself; everything else still needs a token.
func TestHooksNeedNoToken(t *testing.T) {
	hooks := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "hook "+r.URL.Path)
	})
	ts := newTestServer(t, func(c *configT) { c.Hooks = hooks })
	cases := []struct {
		path string
		code int
		body string
	}{
		{"/hooks/apps", http.StatusAccepted, "hook /hooks/apps"},
		{"/hooks/../api/v1/pods", http.StatusAccepted, "hook /hooks/../api/v1/pods"},
		{"/hooksx", http.StatusUnauthorized, ""},
		{"/api/v1/pods", http.StatusUnauthorized, ""},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(http.MethodPost, ts.url+tc.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = tc.path // keep the dots: the client would clean them
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.body) {
			t.Errorf("POST %s: %d %s, want %d %q", tc.path, resp.StatusCode, b, tc.code, tc.body)
		}
	}
	plain := newTestServer(t)
	resp, err := http.Post(plain.url+"/hooks/apps", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/hooks/ without Config.Hooks: %d, want 401", resp.StatusCode)
	}
}
