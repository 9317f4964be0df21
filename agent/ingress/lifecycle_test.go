package ingress

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/runtime"
)

// echoServer is a WebSocket server that sends back every message; it
// reports each connection on conns.
func echoServer(t testing.TB) (*upstream, chan struct{}) {
	conns := make(chan struct{}, 16)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		conns <- struct{}{}
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return &upstream{name: "ws", srv: srv, port: int32(srv.Listener.Addr().(*net.TCPAddr).Port)}, conns
}

// dialWS opens a WebSocket to host through the proxy's plain HTTP address.
func dialWS(t testing.TB, p *Proxy, host string) *websocket.Conn {
	t.Helper()
	httpAddr, _ := p.Addrs()
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+httpAddr.String()+"/chat", http.Header{"Host": {host}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("WebSocket through the proxy: %v (status %d)", err, status)
	}
	return c
}

// TestWebSocket: an Upgrade passes through the proxy and messages echo
// both ways.
func TestWebSocket(t *testing.T) {
	ws, _ := echoServer(t)
	e := newEnv(t, objects(serviceFor(ws), []runtime.Object{ingress("ws", 0, rule("ws.example.com", prefix("/", "ws")))})...)
	c := dialWS(t, e.proxy(), "ws.example.com")
	defer c.Close()
	for _, msg := range []string{"hello", strings.Repeat("x", 100_000)} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(got))
		}
	}
}

// TestRunJoinsItsGoroutines: with a WebSocket open and a slow request in
// flight, ending Run's context ends both within the grace, and Run leaves
// no goroutine behind.
func TestRunJoinsItsGoroutines(t *testing.T) {
	ws, conns := echoServer(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		_, _ = w.Write([]byte("slow"))
	}))
	t.Cleanup(slow.Close)
	e := newEnv(t, objects(serviceFor(ws), []runtime.Object{
		service("slow"), slice("slow-1", "slow", int32(slow.Listener.Addr().(*net.TCPAddr).Port), true, "127.0.0.1"),
		ingress("ws", 0, rule("ws.example.com", prefix("/", "ws")), rule("slow.example.com", prefix("/", "slow"))),
	})...)
	// The informers run before and after: only what Run starts counts.
	settle()
	before := goleak.IgnoreCurrent()
	p, stop := e.start()
	c := dialWS(t, p, "ws.example.com")
	defer c.Close()
	<-conns
	cl := e.client(p)
	slowDone := make(chan reply, 1)
	go func() { slowDone <- cl.get("slow.example.com", "/") }()
	time.Sleep(50 * time.Millisecond) // the slow request is under way

	start := time.Now()
	stop()
	if d := time.Since(start); d > shutdownGrace+time.Second {
		t.Errorf("Run took %v to return, want at most the grace %v", d, shutdownGrace)
	}
	if r := <-slowDone; r.status != http.StatusOK || r.body != "slow" {
		t.Errorf("the request in flight at shutdown: %d %q, want it finished", r.status, r.body)
	}
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("the WebSocket is still open after Run returned")
	}
	c.Close()
	cl.c.CloseIdleConnections()
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines left after Run returned: %v", err)
	}
}

// TestRunFailsWhenAddressTaken: Run reports at once an address it cannot
// bind, naming it, and releases the other.
func TestRunFailsWhenAddressTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	e := newEnv(t)
	cfg := e.config()
	cfg.HTTPAddr, cfg.HTTPSAddr = freeAddr, taken.Addr().String()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) || !strings.Contains(err.Error(), "HTTPS") {
		t.Fatalf("Run: %v, want an error naming the HTTPS address %s", err, taken.Addr())
	}
	if ctx.Err() != nil {
		t.Fatal("Run waited for its context instead of failing at once")
	}
	again, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("the HTTP address is still bound after Run failed: %v", err)
	}
	again.Close()
}

// TestNewChecksConfig: missing informers or addresses are refused.
func TestNewChecksConfig(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no secrets":   {func(c *Config) { c.Secrets = nil }, "Secrets"},
		"no address":   {func(c *Config) { c.HTTPAddr, c.HTTPSAddr = "", "" }, "nothing to serve"},
		"only https":   {func(c *Config) { c.HTTPAddr = "" }, ""},
		"valid config": {func(*Config) {}, ""},
	} {
		cfg := e.config()
		tc.mod(&cfg)
		_, err := New(cfg)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: New: %v, want an error with %q", name, err, tc.want)
		}
	}
}

// settle waits until the informers have started their watches: the number
// of goroutines stays the same for 50ms.
func settle() {
	n := goruntime.NumGoroutine()
	for stable := 0; stable < 10; {
		time.Sleep(5 * time.Millisecond)
		if m := goruntime.NumGoroutine(); m == n {
			stable++
		} else {
			n, stable = m, 0
		}
	}
}
