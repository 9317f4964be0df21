package apiserver

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProfilingIsForAdmins: /debug/pprof/ answers system:masters, refuses
// other users, and is absent without Profiling.
func TestProfilingIsForAdmins(t *testing.T) {
	tokens, err := ParseTokens(strings.NewReader("admin-token,admin,1,\"system:masters\"\nreader-token,reader,2,\"team\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		profiling bool
		token     string
		want      int
	}{{true, "admin-token", http.StatusOK}, {true, "reader-token", http.StatusForbidden}, {false, "admin-token", http.StatusNotFound}} {
		srv := New(Config{Tokens: tokens, Profiling: tc.profiling, Logger: slog.New(slog.DiscardHandler)})
		req := httptest.NewRequest("GET", "/debug/pprof/heap?debug=1", nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("profiling %v, %s: %d, want %d: %s", tc.profiling, tc.token, rec.Code, tc.want, rec.Body)
		}
		if tc.want == http.StatusOK && !strings.Contains(rec.Body.String(), "heap profile") {
			t.Errorf("not a heap profile: %.200s", rec.Body)
		}
	}
}
