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

// TestSendLinesKeepsLaterLines: once past the resume point, lines with the
// same time, or an earlier one (a clock stepped back), are all sent.
func TestSendLinesKeepsLaterLines(t *testing.T) {
	log := "2026-12-05T00:00:02Z old\n2026-12-05T00:00:03Z a\n2026-12-05T00:00:03Z b\n2026-12-05T00:00:01Z stepped back\n"
	last, _ := time.Parse(time.RFC3339Nano, "2026-12-05T00:00:02Z")
	rec := httptest.NewRecorder()
	sendLines(rec, http.NewResponseController(rec), strings.NewReader(log), last)
	got := rec.Body.String()
	for _, want := range []string{"data: a\n", "data: b\n", "data: stepped back\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("lost %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "data: old\n") {
		t.Errorf("sent again a line sent before:\n%s", got)
	}
	long := "2026-12-05T00:00:04Z " + strings.Repeat("x", maxLine+10) + "\n"
	rec = httptest.NewRecorder()
	sendLines(rec, http.NewResponseController(rec), strings.NewReader(long), time.Time{})
	if n := strings.Count(rec.Body.String(), "data: "); n != 2 || strings.Count(rec.Body.String(), "x") != maxLine+10 {
		t.Errorf("a long line: %d events, %d bytes of it", n, strings.Count(rec.Body.String(), "x"))
	}
}
