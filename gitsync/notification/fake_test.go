package notification

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// received is one request a fake endpoint saw.
type received struct {
	method string
	// path is the escaped path, as sent.
	path   string
	header http.Header
	body   []byte
}

// answer is what a fake endpoint says to one request.
type answer struct {
	code int
	body string
	// block holds the answer until the request is cancelled.
	block bool
}

// fake is an endpoint that records every request and answers with its
// answers in turn, then with 201 Created.
type fake struct {
	srv  *httptest.Server
	reqs chan received
	mu   sync.Mutex
	next []answer
	seen int
}

func newFake(t *testing.T, answers ...answer) *fake {
	t.Helper()
	f := &fake{reqs: make(chan received, 100), next: answers}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen++
	a := answer{code: http.StatusCreated, body: `{}`}
	if len(f.next) > 0 {
		a, f.next = f.next[0], f.next[1:]
	}
	f.mu.Unlock()
	f.reqs <- received{method: r.Method, path: r.URL.EscapedPath(), header: r.Header.Clone(), body: body}
	if a.block {
		<-r.Context().Done()
		return
	}
	w.WriteHeader(a.code)
	_, _ = io.WriteString(w, a.body)
}

// count is how many requests f has seen.
func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

// url is f's address with path appended.
func (f *fake) url(path string) string { return f.srv.URL + path }

// receive returns the next request f saw. The deadline only keeps a broken
// test from hanging until the test binary's timeout.
func (f *fake) receive(t *testing.T) received {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the fake endpoint")
		return received{}
	}
}

// logBuffer collects log lines written from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testOptions are Options for tests: tiny back-offs, a client of their own
// and debug logs into the returned buffer.
func testOptions(t *testing.T) (Options, *logBuffer) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	logs := &logBuffer{}
	return Options{
		Client:     &http.Client{Transport: tr},
		Log:        slogTo(logs),
		Backoff:    time.Millisecond,
		MaxBackoff: 4 * time.Millisecond,
	}, logs
}

// start makes a Dispatcher and runs it until the test ends.
func start(t *testing.T, providers []Provider, opts Options) *Dispatcher {
	t.Helper()
	d, err := New(providers, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	runUntilCleanup(t, d)
	return d
}

// runUntilCleanup runs d until the test ends, and waits for Run to return.
func runUntilCleanup(t *testing.T, d *Dispatcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// writeFile writes content to name in a temporary folder and returns its
// path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// countLines counts the log lines that contain s.
func countLines(logs *logBuffer, s string) int {
	n := 0
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

const (
	rev1 = "0123456789abcdef0123456789abcdef01234567"
	rev2 = "89abcdef0123456789abcdef0123456789abcdef"
)

var testTime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// event is a success of source apps at rev1.
func event() Event {
	return Event{
		Source:   "apps",
		URL:      "https://github.com/example/apps.git",
		Revision: rev1,
		State:    StateSuccess,
		Severity: SeverityInfo,
		Reason:   "Succeeded",
		Message:  "12 objects applied",
		Link:     "https://keelson.example/syncs/apps",
		Time:     testTime,
	}
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
