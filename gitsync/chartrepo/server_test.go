package chartrepo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"sigs.k8s.io/yaml"
)

// packageChart packages a chart named name at version with Helm's own
// packager: one ConfigMap whose data says the version, from values.
func packageChart(t *testing.T, name, version string) []byte {
	t.Helper()
	c := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version, Type: "application"},
		Values:   map[string]any{"greeting": "hello"},
		Templates: []*common.File{{Name: "templates/cm.yaml", Data: []byte(
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  version: {{ .Chart.Version | quote }}\n  greeting: {{ .Values.greeting | quote }}\n")}},
	}
	p, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// repoServer is a chart repository served over HTTP in the test: an
// index.yaml listing its charts, and their archives.
type repoServer struct {
	*httptest.Server

	mu       sync.Mutex
	files    map[string][]byte
	index    map[string][]map[string]any
	requests map[string]int
	status   int // answered to every request when not zero
	total    atomic.Int64
}

func newRepoServer(t *testing.T) *repoServer {
	t.Helper()
	s := &repoServer{files: map[string][]byte{}, index: map[string][]map[string]any{}, requests: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *repoServer) serve(w http.ResponseWriter, r *http.Request) {
	s.total.Add(1)
	s.mu.Lock()
	s.requests[r.URL.Path]++
	status := s.status
	data, ok := s.files[r.URL.Path]
	if r.URL.Path == "/charts/index.yaml" {
		data, ok = s.indexYAML(), true
	}
	s.mu.Unlock()
	switch {
	case status != 0:
		w.WriteHeader(status)
	case !ok:
		http.NotFound(w, r)
	default:
		_, _ = w.Write(data)
	}
}

// URL is the repository's URL, as a server is given it.
func (s *repoServer) URL() string { return s.Server.URL + "/charts" }

// add publishes a chart version; the index's digest is the archive's
// unless digest is given.
func (s *repoServer) add(t *testing.T, name, version string, digest string) {
	t.Helper()
	data := packageChart(t, name, version)
	sum := sha256.Sum256(data)
	if digest == "" {
		digest = hex.EncodeToString(sum[:])
	}
	file := fmt.Sprintf("%s-%s.tgz", name, version)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files["/charts/"+file] = data
	s.index[name] = append(s.index[name], map[string]any{
		"apiVersion": "v2", "name": name, "version": version, "digest": digest, "urls": []string{file},
	})
}

func (s *repoServer) indexYAML() []byte {
	data, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "entries": s.index})
	if err != nil {
		return []byte("not: [an index")
	}
	return data
}

// fetched counts the requests of paths ending in suffix.
func (s *repoServer) fetched(suffix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.requests {
		if strings.HasSuffix(p, suffix) {
			n += c
		}
	}
	return n
}

func (s *repoServer) answer(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}
