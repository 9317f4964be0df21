package agent

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeAPI answers node GETs and POSTs as an API server named name would,
// counting the requests it got and checking each carries the node's token.
type fakeAPI struct {
	name  string
	srv   *httptest.Server
	calls atomic.Int32
}

func newFakeAPI(t *testing.T, name string) *fakeAPI {
	f := &fakeAPI{name: name}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer node-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		node := &corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}}
		switch r.Method {
		case http.MethodGet:
			node.Name = strings.TrimPrefix(r.URL.Path, "/api/v1/nodes/")
		case http.MethodPost:
			body, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(body, node); err != nil {
				http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		node.Labels = map[string]string{"served-by": name}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(node)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func caFileOf(t *testing.T, srv *httptest.Server) string {
	path := filepath.Join(t.TempDir(), "ca.crt")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestClientFailsOver(t *testing.T) {
	a, b := newFakeAPI(t, "a"), newFakeAPI(t, "b")
	client, err := NewClient([]string{a.srv.URL, b.srv.URL}, "node-token\n", caFileOf(t, a.srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	servedBy := func(n *corev1.Node, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n.Labels["served-by"]
	}
	ctx := t.Context()
	if got := servedBy(client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})); got != "a" {
		t.Fatalf("first request served by %q, want the first server", got)
	}

	a.srv.Close() // a dies: requests go to b, a write with its body too
	if got := servedBy(client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})); got != "b" {
		t.Fatalf("with a down, served by %q, want b", got)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}
	if got := servedBy(client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})); got != "b" {
		t.Fatalf("create served by %q, want b", got)
	}
	// It stays with b: no request is tried on a first.
	before := b.calls.Load()
	for range 3 {
		servedBy(client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}))
	}
	if n := b.calls.Load() - before; n != 3 {
		t.Fatalf("b got %d of 3 requests after the fail-over, want all", n)
	}

	b.srv.Close() // both down: the error says so
	_, err = client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err == nil || !strings.Contains(err.Error(), "no API server reachable (2 tried)") {
		t.Fatalf("with every server down: %v, want an error naming both tries", err)
	}
}

func TestClientRefusesBadServers(t *testing.T) {
	for _, servers := range [][]string{
		nil,
		{"127.0.0.1:7443"},
		{"ftp://api:21"},
		{"https://api:7443/some/path"},
		{"https://api:7443", "https://api:7443"},
	} {
		if _, err := NewClient(servers, "t", "", nil); err == nil {
			t.Errorf("NewClient(%q): no error", servers)
		}
	}
}
