package apiserver_test

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// testTokens are the users of the test servers.
const testTokens = `
admin-token,admin,1,"system:masters"
alice-token,alice,2,"team-a"
reader-token,reader,3
node1-token,system:node:n1,4,"system:nodes"
`

const grantsYAML = `
grants:
- groups: [team-a]
  namespaces: [team-a]
- users: [reader]
  namespaces: ["*"]
`

type testServer struct {
	srv *apiserver.Server
	st  *store.Store
	url string
}

type option func(*apiserver.Config)

func withGrants(t *testing.T) option {
	return func(c *apiserver.Config) {
		path := t.TempDir() + "/authz.yaml"
		if err := os.WriteFile(path, []byte(grantsYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		g, err := apiserver.LoadGrants(path)
		if err != nil {
			t.Fatal(err)
		}
		c.Grants = g
	}
}

func newTestServer(t testing.TB, opts ...option) *testServer {
	t.Helper()
	st := etcdtest.NewStore(t)
	tokens, err := apiserver.ParseTokens(strings.NewReader(testTokens))
	if err != nil {
		t.Fatal(err)
	}
	cfg := apiserver.Config{
		Addr:   "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Store:  st, Tokens: tokens,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv := apiserver.New(cfg)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		hs.CloseClientConnections()
		hs.Close()
	})
	return &testServer{srv: srv, st: st, url: hs.URL}
}

func (ts *testServer) config(token string) *rest.Config {
	return &rest.Config{Host: ts.url, BearerToken: token, QPS: -1}
}

func (ts *testServer) client(t testing.TB, token string) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(ts.config(token))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
