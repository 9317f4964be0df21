package ui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
)

// inProcess is an http.RoundTripper that serves each request with the API's
// own handler in this process: the view reads through the API exactly as
// kubectl does (the same authentication, grants and hidden secret values),
// without a connection, TLS or a second copy of any object. Bodies stream,
// so watches and followed logs work; closing a body ends its request.
type inProcess struct {
	h   http.Handler
	log *slog.Logger
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, body: pw, ready: make(chan struct{})}
	r := req.Clone(ctx)
	r.RemoteAddr = remoteAddr(ctx)
	r.RequestURI = req.URL.RequestURI()
	go func() {
		defer func() {
			// As net/http does for a handler that panics: the request
			// fails, the process goes on.
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				t.log.Error("the API's handler panicked serving the view", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				w.WriteHeader(http.StatusInternalServerError)
				pw.CloseWithError(fmt.Errorf("the API's handler panicked: %v", p))
				return
			}
			w.WriteHeader(http.StatusOK) // a handler that wrote nothing
			pw.Close()
		}()
		t.h.ServeHTTP(w, r)
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		cancel()
		pr.Close()
		return nil, ctx.Err()
	}
	return &http.Response{
		Status:     http.StatusText(w.code),
		StatusCode: w.code,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     w.sent,
		Body:       &cancelBody{ReadCloser: pr, cancel: cancel},
		Request:    req,
	}, nil
}

// cancelBody ends the handler's request when the reader closes the body,
// so a watch nobody reads stops at once rather than at its next event.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	b.cancel()
	return b.ReadCloser.Close()
}

// pipeWriter is the handler's side: headers once, then the body into a pipe.
type pipeWriter struct {
	header http.Header
	body   *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
	code   int
	sent   http.Header
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.code, w.sent = code, w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush is a no-op: every write reaches the reader as it is made.
func (w *pipeWriter) Flush() {}

type remoteKey struct{}

// withRemote keeps the address of the person's browser for the API's
// requests, so the API logs it, not the view's.
func withRemote(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

func remoteAddr(ctx context.Context) string {
	if a, ok := ctx.Value(remoteKey{}).(string); ok && a != "" {
		return a
	}
	return "127.0.0.1:0"
}
