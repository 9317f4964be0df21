package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSendLinesResumes: lines at or before the last one sent are not sent
// again when a broken stream is read anew from that time.
func TestSendLinesResumes(t *testing.T) {
	log := "2026-12-05T00:00:01.5Z one\n2026-12-05T00:00:02Z two\n2026-12-05T00:00:02.25Z three\n"
	last, _ := time.Parse(time.RFC3339Nano, "2026-12-05T00:00:02Z")
	rec := httptest.NewRecorder()
	got, gone := sendLines(rec, http.NewResponseController(rec), strings.NewReader(log), last)
	if gone {
		t.Fatal("the client went")
	}
	want := "id: 2026-12-05T00:00:02.25Z\ndata: three\n\n"
	if rec.Body.String() != want {
		t.Errorf("sent\n%q\nwant\n%q", rec.Body.String(), want)
	}
	if got.Format(time.RFC3339Nano) != "2026-12-05T00:00:02.25Z" {
		t.Errorf("last %v", got)
	}
	rec = httptest.NewRecorder()
	sendLines(rec, http.NewResponseController(rec), strings.NewReader(log+"not a time\r\n"), time.Time{})
	if n := strings.Count(rec.Body.String(), "data: "); n != 4 || !strings.Contains(rec.Body.String(), "\ndata: not a time\n\n") {
		t.Errorf("from the start: %q", rec.Body.String())
	}
}
