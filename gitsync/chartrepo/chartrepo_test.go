package chartrepo

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/keelson/keelson/gitsync/render"
	"github.com/keelson/keelson/schema"
)

// helmChartTree is a repository with one HelmChart (apps/web.yaml, its
// document at line 2) naming chart of repo at version.
func helmChartTree(repo, chart, version string) fstest.MapFS {
	doc := fmt.Sprintf(`# the web front
apiVersion: keelson.dev/v1alpha1
kind: HelmChart
metadata:
  name: web
  namespace: shop
spec:
  repoURL: %s
  chart: %s
  version: %q
  values:
    greeting: hi
`, repo, chart, version)
	return fstest.MapFS{"apps/web.yaml": {Data: []byte(doc)}}
}

func newFetcher(t *testing.T, dir string, interval time.Duration, repos ...string) *Fetcher {
	t.Helper()
	f, err := New(Options{Dir: dir, Repositories: repos, IndexInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newRenderer(f render.ChartFetcher) *render.Renderer {
	r := render.New(render.Limits{})
	if f != nil {
		r.Charts = f
	}
	return r
}

// renderedVersion renders tree and returns the chart version its one
// ConfigMap says, failing on any problem.
func renderedVersion(t *testing.T, r *render.Renderer, tree fstest.MapFS) (string, *render.Output) {
	t.Helper()
	out := r.Render(t.Context(), tree, nil)
	if len(out.Errors) > 0 {
		t.Fatalf("render: %v", out.Errors)
	}
	if len(out.Docs) != 1 {
		t.Fatalf("rendered %d objects, want the chart's ConfigMap", len(out.Docs))
	}
	d := out.Docs[0]
	if d.File != "apps/web.yaml" || !strings.Contains(d.Via, "HelmChart shop/web") {
		t.Errorf("object points at %s via %q, want the HelmChart's file", d.File, d.Via)
	}
	var cm struct {
		Metadata struct{ Name, Namespace string }
		Data     map[string]string
	}
	if err := yaml.Unmarshal(d.Data, &cm); err != nil {
		t.Fatalf("rendered object %s: %v", d.Data, err)
	}
	if cm.Data["greeting"] != "hi" || cm.Metadata.Name != "web-cm" || cm.Metadata.Namespace != "shop" {
		t.Errorf("rendered without the HelmChart's values, name or namespace: %s", d.Data)
	}
	return cm.Data["version"], out
}

func TestRenderExactVersionFromRepository(t *testing.T) {
	srv := newRepoServer(t)
	srv.add(t, "web", "1.0.0", "")
	srv.add(t, "web", "1.1.0", "")
	dir := t.TempDir()
	tree := helmChartTree(srv.URL(), "web", "1.0.0")
	r := newRenderer(newFetcher(t, dir, time.Nanosecond, srv.URL()+"/"))
	if v, _ := renderedVersion(t, r, tree); v != "1.0.0" {
		t.Fatalf("rendered version %s, want 1.0.0", v)
	}
	if _, out := renderedVersion(t, r, tree); out.Rebuilt != 0 {
		t.Errorf("an exact version rendered again: Rebuilt = %d, want 0", out.Rebuilt)
	}
	if n := srv.fetched(".tgz"); n != 1 {
		t.Errorf("archive fetched %d times, want 1", n)
	}
	srv.Close() // a restart, offline: the exact version is on disk
	r = newRenderer(newFetcher(t, dir, time.Nanosecond, srv.URL()))
	if v, _ := renderedVersion(t, r, tree); v != "1.0.0" {
		t.Fatalf("after a restart offline: version %s, want 1.0.0", v)
	}
}

func TestRenderConstraintPicksHighest(t *testing.T) {
	srv := newRepoServer(t)
	for _, v := range []string{"1.0.0", "1.2.0", "1.10.0-rc.1", "2.0.0"} {
		srv.add(t, "web", v, "")
	}
	tree := helmChartTree(srv.URL(), "web", "^1.0")
	r := newRenderer(newFetcher(t, t.TempDir(), time.Nanosecond, srv.URL()))
	if v, _ := renderedVersion(t, r, tree); v != "1.2.0" {
		t.Fatalf("^1.0 rendered %s, want 1.2.0, the highest stable 1.x", v)
	}
	if _, out := renderedVersion(t, r, tree); out.Rebuilt != 0 {
		t.Errorf("nothing new in the index, yet Rebuilt = %d", out.Rebuilt)
	}
	srv.add(t, "web", "1.3.0", "")
	v, out := renderedVersion(t, r, tree)
	if v != "1.3.0" || out.Rebuilt != 1 {
		t.Errorf("after 1.3.0 is published: version %s, Rebuilt %d; want 1.3.0 rebuilt", v, out.Rebuilt)
	}
	srv.Close() // offline: the last index fetched answers
	if v, _ := renderedVersion(t, r, tree); v != "1.3.0" {
		t.Errorf("offline: version %s, want 1.3.0 from the last index", v)
	}
}

func TestIndexFetchedOncePerInterval(t *testing.T) {
	srv := newRepoServer(t)
	srv.add(t, "web", "1.0.0", "")
	f := newFetcher(t, t.TempDir(), time.Hour, srv.URL())
	for range 3 {
		if _, err := f.Resolve(t.Context(), render.ChartRequest{RepoURL: srv.URL(), Chart: "web", Version: ">=1"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.fetched("index.yaml"); n != 1 {
		t.Errorf("index fetched %d times within one interval, want 1", n)
	}
}

// repoErrorCase is a HelmChart whose chart cannot be had, and what its
// error must say.
type repoErrorCase struct {
	name           string
	setup          func(t *testing.T, srv *repoServer)
	repo           func(srv *repoServer) string
	chart, version string
	noFetcher      bool
	maxArchive     int64
	field, msg     string
	noRequests     bool
}

func TestRepositoryErrors(t *testing.T) {
	own := func(s *repoServer) string { return s.URL() }
	cases := []repoErrorCase{
		{name: "repository not enabled", repo: func(s *repoServer) string { return s.Server.URL + "/other" }, chart: "web", version: "1.0.0",
			field: "spec.repoURL", msg: "is not one of the chart repositories this server fetches from (keelson server --chart-repository)", noRequests: true},
		{name: "no fetcher", noFetcher: true, repo: own, chart: "web", version: "1.0.0",
			field: "spec.repoURL", msg: "chart repositories are not enabled on this server", noRequests: true},
		{name: "no such chart", repo: own, chart: "db", version: "1.0.0", field: "spec.chart", msg: `lists no chart "db"`},
		{name: "no version", repo: own, chart: "web", version: "9.9.9", field: "spec.version", msg: `no version of the chart matches "9.9.9": web has 1.0.0`},
		{name: "bad constraint", repo: own, chart: "web", version: ">=>1", field: "spec.version", msg: "neither a version nor a semver constraint"},
		{name: "digest mismatch", repo: own, chart: "bad", version: "1.0.0", field: "spec.repoURL", msg: "digest mismatch: the archive at",
			setup: func(t *testing.T, s *repoServer) { s.add(t, "bad", "1.0.0", strings.Repeat("0", 64)) }},
		{name: "server down", repo: own, chart: "web", version: "1.0.0", field: "spec.repoURL", msg: "cannot fetch index",
			setup: func(_ *testing.T, s *repoServer) { s.Close() }},
		{name: "credentials", repo: own, chart: "web", version: "1.0.0", field: "spec.repoURL", msg: "401 Unauthorized: the repository asks for credentials, which keelson does not support",
			setup: func(_ *testing.T, s *repoServer) { s.answer(http.StatusUnauthorized) }},
		{name: "archive too large", repo: own, chart: "web", version: "1.0.0", maxArchive: 64, field: "spec.repoURL", msg: "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkRepoError(t, tc) })
	}
}

func checkRepoError(t *testing.T, tc repoErrorCase) {
	srv := newRepoServer(t)
	srv.add(t, "web", "1.0.0", "")
	if tc.setup != nil {
		tc.setup(t, srv)
	}
	var f render.ChartFetcher
	if !tc.noFetcher {
		fe, err := New(Options{Dir: t.TempDir(), Repositories: []string{srv.URL()}, MaxArchiveBytes: tc.maxArchive})
		if err != nil {
			t.Fatal(err)
		}
		f = fe
	}
	out := newRenderer(f).Render(t.Context(), helmChartTree(tc.repo(srv), tc.chart, tc.version), nil)
	if len(out.Docs) != 0 || len(out.Errors) != 1 {
		t.Fatalf("rendered %d objects and %d errors, want one error: %v", len(out.Docs), len(out.Errors), out.Errors)
	}
	e := out.Errors[0]
	if e.File != "apps/web.yaml" || e.Line != 2 || e.Path != tc.field || !strings.Contains(e.Msg, tc.msg) {
		t.Errorf("error %s:%d %s: %s\nwant apps/web.yaml:2 %s: ...%s...", e.File, e.Line, e.Path, e.Msg, tc.field, tc.msg)
	}
	if tc.noRequests && srv.total.Load() != 0 {
		t.Errorf("%d requests to the server, want none", srv.total.Load())
	}
	var _ schema.ErrorList = out.Errors
}
