package registrytest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keelson/keelson/agent/registry"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

// Registry is a running test registry.
type Registry struct {
	// Host is its host:port, 127.0.0.1 and a free port.
	Host  string
	users map[string]string

	mu sync.Mutex
	// gets counts manifest requests (HEAD or GET) answered with 200, by
	// repository.
	gets map[string]int
}

// Start runs a registry until the test ends. With users (name → password)
// every request needs one of them by basic authentication; without, it is
// anonymous.
func Start(t testing.TB, users map[string]string) *Registry {
	t.Helper()
	r := &Registry{users: users, gets: map[string]int{}}
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if len(users) > 0 {
			u, p, ok := req.BasicAuth()
			if !ok || users[u] != p || p == "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		rec := &status{ResponseWriter: w, code: http.StatusOK}
		inner.ServeHTTP(rec, req)
		if repo, ok := manifestRepo(req.URL.Path); ok && rec.code == http.StatusOK {
			r.mu.Lock()
			r.gets[repo]++
			r.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

type status struct {
	http.ResponseWriter
	code int
}

func (s *status) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// manifestRepo reads the repository of /v2/<repo>/manifests/<ref>.
func manifestRepo(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, "/manifests/")
	if i < 0 {
		return "", false
	}
	return rest[:i], true
}

// ManifestRequests is how many requests for manifests of repo were
// answered: a pull makes one or two.
func (r *Registry) ManifestRequests(repo string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[repo]
}

// Registries is a registries file that reaches this registry over plain
// HTTP, as its own mirror (and, with mirrorFor, as the mirror of those
// registries too).
func (r *Registry) Registries(t testing.TB, mirrorFor ...string) *registry.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("mirrors:\n")
	for _, host := range append([]string{r.Host}, mirrorFor...) {
		fmt.Fprintf(&b, "  %q:\n    endpoint: [\"http://%s\"]\n", host, r.Host)
	}
	c, err := registry.Parse("registrytest", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// PushBusybox pushes the busybox image keelson's tests run (ociarchive's,
// from the machine's static busybox) as repo:tag, through the registry's
// HTTP API as a client would; it returns host/repo:tag.
func (r *Registry) PushBusybox(t testing.TB, repo, tag string) string {
	t.Helper()
	var archive bytes.Buffer
	if err := ociarchive.BuildBusybox(&archive, "/bin/busybox", ociarchive.BusyboxRef); err != nil {
		t.Fatalf("build the busybox image (apt-get install busybox-static): %v", err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&archive)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	var index ocispec.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("the busybox archive's index: %v", err)
	}
	blob := func(d digest.Digest) []byte { return files["blobs/"+d.Algorithm().String()+"/"+d.Encoded()] }
	desc := index.Manifests[0]
	var manifest ocispec.Manifest
	if err := json.Unmarshal(blob(desc.Digest), &manifest); err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]ocispec.Descriptor{manifest.Config}, manifest.Layers...) {
		r.upload(t, repo, d.Digest, blob(d.Digest))
	}
	r.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, desc.MediaType, blob(desc.Digest), http.StatusCreated)
	return r.Host + "/" + repo + ":" + tag
}

// upload pushes a blob in one piece: POST for an upload, PUT with its digest.
func (r *Registry) upload(t testing.TB, repo string, d digest.Digest, data []byte) {
	resp := r.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	r.do(t, http.MethodPut, loc.RequestURI(), "application/octet-stream", data, http.StatusCreated)
}

func (r *Registry) do(t testing.TB, method, path, contentType string, body []byte, want int) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+r.Host+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for u, p := range r.users {
		req.SetBasicAuth(u, p)
		break
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, msg)
	}
	return resp
}
