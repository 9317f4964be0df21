package chartrepo

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keelson/keelson/gitsync/render"
)

func TestOCIRenderExactVersion(t *testing.T) {
	srv := newOCIServer(t)
	want := srv.add(t, "web", "1.0.0")
	srv.add(t, "web", "1.1.0")
	dir := t.TempDir()
	tree := helmChartTree(srv.URL(), "web", "1.0.0")
	f := newFetcher(t, dir, time.Nanosecond, srv.URL()+"/")
	ref, err := f.Resolve(t.Context(), render.ChartRequest{RepoURL: srv.URL(), Chart: "web", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Digest != want || ref.Version != "1.0.0" || ref.URL != "oci://"+srv.host()+"/charts/web:1.0.0" {
		t.Errorf("resolved %+v, want version 1.0.0 at oci://%s/charts/web:1.0.0 with the pushed layer's digest %s", ref, srv.host(), want)
	}
	r := newRenderer(f)
	if v, _ := renderedVersion(t, r, tree); v != "1.0.0" {
		t.Fatalf("rendered version %s, want 1.0.0", v)
	}
	if _, out := renderedVersion(t, r, tree); out.Rebuilt != 0 {
		t.Errorf("an exact version rendered again: Rebuilt = %d, want 0", out.Rebuilt)
	}
	if n := srv.fetched("/manifests/"); n != 1 {
		t.Errorf("manifest fetched %d times, want 1: an exact version is pulled once", n)
	}
	if n := srv.fetched("/tags/list"); n != 0 {
		t.Errorf("tags listed %d times for an exact version, want 0", n)
	}
	srv.Close() // a restart, offline: the exact version is on disk
	r = newRenderer(newFetcher(t, dir, time.Nanosecond, srv.URL()))
	if v, _ := renderedVersion(t, r, tree); v != "1.0.0" {
		t.Fatalf("after a restart offline: version %s, want 1.0.0", v)
	}
}

func TestOCIConstraintPicksHighest(t *testing.T) {
	srv := newOCIServer(t)
	for _, v := range []string{"1.0.0", "1.2.0", "1.10.0-rc.1", "2.0.0"} {
		srv.add(t, "web", v)
	}
	f := newFetcher(t, t.TempDir(), time.Nanosecond, srv.URL())
	ref, err := f.Resolve(t.Context(), render.ChartRequest{RepoURL: srv.URL(), Chart: "web"})
	if err != nil || ref.Version != "2.0.0" {
		t.Errorf("no version resolved to %+v, %v; want 2.0.0, the highest stable", ref, err)
	}
	tree := helmChartTree(srv.URL(), "web", "^1.0")
	r := newRenderer(f)
	if v, _ := renderedVersion(t, r, tree); v != "1.2.0" {
		t.Fatalf("^1.0 rendered %s, want 1.2.0, the highest stable 1.x", v)
	}
	if _, out := renderedVersion(t, r, tree); out.Rebuilt != 0 {
		t.Errorf("no new tag, yet Rebuilt = %d", out.Rebuilt)
	}
	if n := srv.fetched("/manifests/1.2.0"); n != 1 {
		t.Errorf("1.2.0 pulled %d times, want 1: a tag pulled is pinned", n)
	}
	srv.add(t, "web", "1.3.0")
	v, out := renderedVersion(t, r, tree)
	if v != "1.3.0" || out.Rebuilt != 1 {
		t.Errorf("after 1.3.0 is pushed: version %s, Rebuilt %d; want 1.3.0 rebuilt", v, out.Rebuilt)
	}
	srv.Close() // offline: the tags last listed answer
	if v, _ := renderedVersion(t, r, tree); v != "1.3.0" {
		t.Errorf("offline: version %s, want 1.3.0 from the tags last listed", v)
	}
}

func TestOCITagsListedOncePerInterval(t *testing.T) {
	srv := newOCIServer(t)
	srv.add(t, "web", "1.0.0")
	f := newFetcher(t, t.TempDir(), time.Hour, srv.URL())
	for range 3 {
		if _, err := f.Resolve(t.Context(), render.ChartRequest{RepoURL: srv.URL(), Chart: "web", Version: ">=1"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.fetched("/tags/list"); n != 1 {
		t.Errorf("tags listed %d times within one interval, want 1", n)
	}
}

// ociErrorCase is a HelmChart whose chart a registry cannot give, and
// what its error must say.
type ociErrorCase struct {
	name           string
	setup          func(t *testing.T, srv *ociServer)
	repo           func(srv *ociServer) string
	chart, version string
	maxArchive     int64
	field, msg     string
	noRequests     bool
}

func TestOCIErrors(t *testing.T) {
	own := func(s *ociServer) string { return s.URL() }
	cases := []ociErrorCase{
		{name: "registry not enabled", repo: func(s *ociServer) string { return "oci://" + s.host() + "/other" }, chart: "web", version: "1.0.0",
			field: "spec.repoURL", msg: "is not one of the chart repositories this server fetches from (keelson server --chart-repository)", noRequests: true},
		{name: "no such chart", repo: own, chart: "db", version: "1.0.0", field: "spec.chart", msg: `has no chart "db"`},
		{name: "no such chart, constraint", repo: own, chart: "db", version: "^1", field: "spec.chart", msg: `has no chart "db"`},
		{name: "missing tag", repo: own, chart: "web", version: "9.9.9", field: "spec.version", msg: `no version of the chart matches "9.9.9": web has 1.1.0, 1.0.0`},
		{name: "no matching version", repo: own, chart: "web", version: ">=5", field: "spec.version", msg: `no version of the chart matches ">=5": web has 1.1.0, 1.0.0`},
		{name: "bad constraint", repo: own, chart: "web", version: ">=>1", field: "spec.version", msg: "neither a version nor a semver constraint"},
		{name: "registry down", repo: own, chart: "web", version: "1.0.0", field: "spec.repoURL", msg: "cannot fetch chart %HOST%/charts/web:1.0.0",
			setup: func(_ *testing.T, s *ociServer) { s.Close() }},
		{name: "credentials, basic", repo: own, chart: "web", version: "1.0.0", field: "spec.repoURL", msg: "HTTP 401: the repository asks for credentials, which keelson does not support",
			setup: func(_ *testing.T, s *ociServer) { s.answer(http.StatusUnauthorized, "Basic") }},
		{name: "credentials, token", repo: own, chart: "web", version: "^1", field: "spec.repoURL", msg: "HTTP 401: the repository asks for credentials, which keelson does not support",
			setup: func(_ *testing.T, s *ociServer) { s.answer(http.StatusUnauthorized, "Bearer") }},
		{name: "layer too large", repo: own, chart: "web", version: "1.0.0", maxArchive: 64, field: "spec.repoURL", msg: "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkOCIError(t, tc) })
	}
}

func checkOCIError(t *testing.T, tc ociErrorCase) {
	srv := newOCIServer(t)
	srv.add(t, "web", "1.0.0")
	srv.add(t, "web", "1.1.0")
	if tc.setup != nil {
		tc.setup(t, srv)
	}
	f, err := New(Options{Dir: t.TempDir(), Repositories: []string{srv.URL()}, MaxArchiveBytes: tc.maxArchive})
	if err != nil {
		t.Fatal(err)
	}
	out := newRenderer(f).Render(t.Context(), helmChartTree(tc.repo(srv), tc.chart, tc.version), nil)
	if len(out.Docs) != 0 || len(out.Errors) != 1 {
		t.Fatalf("rendered %d objects and %d errors, want one error: %v", len(out.Docs), len(out.Errors), out.Errors)
	}
	e := out.Errors[0]
	msg := strings.ReplaceAll(tc.msg, "%HOST%", srv.host())
	if e.File != "apps/web.yaml" || e.Line != 2 || e.Path != tc.field || !strings.Contains(e.Msg, msg) {
		t.Errorf("error %s:%d %s: %s\nwant apps/web.yaml:2 %s: ...%s...", e.File, e.Line, e.Path, e.Msg, tc.field, msg)
	}
	if tc.noRequests && srv.total.Load() != 0 {
		t.Errorf("%d requests to the registry, want none", srv.total.Load())
	}
}
