package apiserver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestContinueAfterCompactionIsGone(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	for i := range 5 {
		if err := ts.st.Create(ctx, pod("default", fmt.Sprintf("p%d", i), nil, "", "")); err != nil {
			t.Fatal(err)
		}
	}
	cs := ts.client(t, "admin-token")
	page, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil || page.Continue == "" {
		t.Fatalf("first page: %v, continue %q", err, page.Continue)
	}
	if err := ts.st.Create(ctx, pod("default", "later", nil, "", "")); err != nil {
		t.Fatal(err)
	}
	rev, err := ts.st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.st.Client().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{Limit: 2, Continue: page.Continue})
	if !apierrors.IsResourceExpired(err) {
		t.Fatalf("continue after compaction: %v, want 410 Expired", err)
	}
}

// serve runs the server on a real listener with its production timeouts and
// limits, which httptest does not apply.
func serve(t *testing.T, cfg apiserver.Config) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv := apiserver.New(cfg)
	l, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + l.Addr().String()
}

func TestHugeHeadersAreRefused(t *testing.T) {
	url := serve(t, apiserver.Config{Store: etcdtest.NewStore(t), AnonymousRead: true})
	req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/pods", nil)
	req.Header.Set("X-Junk", strings.Repeat("x", 1<<20))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("1 MiB header: %s, want 431", resp.Status)
	}
	// A client that opens a connection and sends nothing is not a problem
	// for others.
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /healthz HTTP/1.1\r\n")
	resp, err = http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz beside a slow client: %v", err)
	}
	resp.Body.Close()
}

func TestMetricsCountRequestsAndWatches(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := newTestServer(t, func(c *apiserver.Config) { c.Registerer, c.Gatherer = reg, reg })
	ctx := t.Context()
	cs := ts.client(t, "admin-token")
	if _, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	cs.CoreV1().Pods("default").Get(ctx, "nothere", metav1.GetOptions{})
	w, err := cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`keelson_apiserver_requests_total{code="200",resource="pods",verb="list"} 1`,
		`keelson_apiserver_requests_total{code="404",resource="pods",verb="get"} 1`,
		`keelson_apiserver_request_duration_seconds_count{resource="pods",verb="list"} 1`,
		`keelson_apiserver_watchers{resource="pods"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
