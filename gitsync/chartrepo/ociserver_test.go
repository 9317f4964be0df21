package chartrepo

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	ociregistry "github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/registry"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// ociServer is an OCI registry served over HTTP in the test, its charts
// pushed with Helm's own registry client.
type ociServer struct {
	*httptest.Server
	reg http.Handler

	mu       sync.Mutex
	requests map[string]int // by path
	status   int            // answered to every request when not zero
	scheme   string         // of the challenge of a 401: Basic or Bearer
	total    atomic.Int64
}

func newOCIServer(t *testing.T) *ociServer {
	t.Helper()
	s := &ociServer{reg: ociregistry.New(ociregistry.Logger(log.New(io.Discard, "", 0))), requests: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *ociServer) serve(w http.ResponseWriter, r *http.Request) {
	s.total.Add(1)
	s.mu.Lock()
	s.requests[r.URL.Path]++
	status, scheme := s.status, s.scheme
	s.mu.Unlock()
	if status != 0 {
		if scheme == "Bearer" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+s.Server.URL+`/token",service="charts"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
		}
		w.WriteHeader(status)
		return
	}
	s.reg.ServeHTTP(w, r)
}

// host is the registry's host:port, on the loopback.
func (s *ociServer) host() string { return strings.TrimPrefix(s.Server.URL, "http://") }

// URL is the registry's repository of charts, as a server is given it.
func (s *ociServer) URL() string { return "oci://" + s.host() + "/charts" }

// add pushes chart name at version, as `helm push web-1.0.0.tgz
// oci://host/charts` does, and returns its chart layer's digest. The
// requests of the push are not counted.
func (s *ociServer) add(t *testing.T, name, version string) string {
	t.Helper()
	c, err := registry.NewClient(
		registry.ClientOptPlainHTTP(),
		registry.ClientOptAuthorizer(auth.Client{}),
		registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "credentials.json")),
	)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Push(packageChart(t, name, version), s.host()+"/charts/"+name+":"+version)
	if err != nil {
		t.Fatalf("push %s %s: %v", name, version, err)
	}
	s.mu.Lock()
	clear(s.requests)
	s.total.Store(0)
	s.mu.Unlock()
	return res.Chart.Digest
}

// fetched counts the requests of paths containing part ("/blobs/",
// "/tags/list", "/manifests/").
func (s *ociServer) fetched(part string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.requests {
		if strings.Contains(p, part) {
			n += c
		}
	}
	return n
}

// answer makes every request answered by status, a 401 challenging with
// scheme, the token endpoint of Bearer included.
func (s *ociServer) answer(status int, scheme string) {
	s.mu.Lock()
	s.status, s.scheme = status, scheme
	s.mu.Unlock()
}
