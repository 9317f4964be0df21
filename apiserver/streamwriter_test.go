package apiserver

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStreamWriterLetsGoOfLargeBuffers: a watch that once wrote a large
// batch does not hold its buffer for the rest of its life.
func TestStreamWriterLetsGoOfLargeBuffers(t *testing.T) {
	rec := httptest.NewRecorder()
	sw := &streamWriter{w: rec}
	sw.buf.WriteString(strings.Repeat("x", 8*flushAt))
	if err := sw.flush(); err != nil {
		t.Fatal(err)
	}
	if c := sw.buf.Cap(); c > 4*flushAt {
		t.Errorf("after flushing 8 MB the buffer keeps %d bytes", c)
	}
	if rec.Body.Len() != 8*flushAt {
		t.Errorf("wrote %d bytes, want %d", rec.Body.Len(), 8*flushAt)
	}
}
