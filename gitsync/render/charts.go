package render

import (
	"bytes"
	"context"
	"errors"

	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/keelson/keelson/schema"
)

// ChartRequest names a chart of a chart repository as a HelmChart does.
type ChartRequest struct {
	// RepoURL is the repository: an http(s):// URL of an index.yaml's
	// folder, or oci://host/path.
	RepoURL string
	// Chart is the chart's name in the repository.
	Chart string
	// Version is an exact version, a semver constraint (">=1.2 <2"), or
	// empty for the newest stable version.
	Version string
}

// ChartRef is one version of a chart as its repository lists it. Its
// fields together are immutable: the same ref is the same archive.
type ChartRef struct {
	// Version is the exact version.
	Version string
	// Digest is the archive's digest, "sha256:<hex>".
	Digest string
	// URL is where the archive is fetched from.
	URL string
}

// ChartFetcher fetches charts from the chart repositories a server is given.
// Its Resolve answers an exact version already fetched without the
// network, and a constraint from an index it fetches at most once per
// interval, so that a Renderer may ask at every Render. Safe for concurrent
// use.
type ChartFetcher interface {
	// Resolve finds the version of the chart req names. Errors:
	// ErrChartNotFound, ErrChartVersion, and others (a repository not
	// enabled, unreachable, asking for credentials) saying what and why.
	Resolve(ctx context.Context, req ChartRequest) (ChartRef, error)
	// Fetch returns the archive of ref, its digest checked, from the
	// fetcher's store when it was fetched before.
	Fetch(ctx context.Context, req ChartRequest, ref ChartRef) ([]byte, error)
}

// Errors of a ChartFetcher that point at a field of the HelmChart other
// than spec.repoURL.
var (
	// ErrChartNotFound is a chart the repository does not list
	// (spec.chart).
	ErrChartNotFound = errors.New("no such chart in the repository")
	// ErrChartVersion is a version or constraint no listed version
	// matches (spec.version).
	ErrChartVersion = errors.New("no version of the chart matches")
)

// chartField is the HelmChart field an error of a ChartFetcher is about.
func chartField(err error) string {
	switch {
	case errors.Is(err, ErrChartNotFound):
		return "spec.chart"
	case errors.Is(err, ErrChartVersion):
		return "spec.version"
	}
	return "spec.repoURL"
}

// recordChart notes that the unit rendered req as ref (the zero ChartRef
// when it failed): a cached rendering stands only while req still resolves
// to ref.
func (t *Tree) recordChart(req ChartRequest, ref ChartRef) {
	t.mu.Lock()
	if t.charts == nil {
		t.charts = map[ChartRequest]ChartRef{}
	}
	t.charts[req] = ref
	t.mu.Unlock()
}

func (t *Tree) chartRefs() map[ChartRequest]ChartRef {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.charts) == 0 {
		return nil
	}
	out := make(map[ChartRequest]ChartRef, len(t.charts))
	for k, v := range t.charts {
		out[k] = v
	}
	return out
}

// chartsValid reports whether every chart a unit rendered from a
// repository still resolves to the same version and archive: a newer match
// of a constraint rebuilds the unit, an exact version never does. A chart
// that failed is always tried again.
func chartsValid(ctx context.Context, f ChartFetcher, refs map[ChartRequest]ChartRef) bool {
	for req, ref := range refs {
		if f == nil || ref == (ChartRef{}) {
			return false
		}
		now, err := f.Resolve(ctx, req)
		if err != nil || now != ref {
			return false
		}
	}
	return true
}

// loadRepoChart resolves and fetches the HelmChart's chart from its
// repository, and loads the archive as a vendored one is loaded. The
// objects it renders point at the HelmChart's file: that is what a person
// edits to change them.
func (r *helmRender) loadRepoChart(ctx context.Context) (*loadedChart, *schema.Error) {
	spec := &r.hc.Spec
	if r.t.fetcher == nil {
		return nil, r.errorf("spec.repoURL", "%s: %v", spec.RepoURL, errRepositories)
	}
	req := ChartRequest{RepoURL: spec.RepoURL, Chart: spec.Chart, Version: spec.Version}
	ref, err := r.t.fetcher.Resolve(ctx, req)
	if err != nil {
		r.t.recordChart(req, ChartRef{})
		return nil, r.errorf(chartField(err), "chart %s from %s: %v", spec.Chart, spec.RepoURL, err)
	}
	data, err := r.t.fetcher.Fetch(ctx, req, ref)
	if err != nil {
		r.t.recordChart(req, ChartRef{})
		return nil, r.errorf(chartField(err), "chart %s %s from %s: %v", spec.Chart, ref.Version, spec.RepoURL, err)
	}
	r.t.recordChart(req, ref)
	c, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, r.errorf("spec.chart", "chart %s %s from %s (%s): %v", spec.Chart, ref.Version, spec.RepoURL, ref.Digest, err)
	}
	if c.Name() != spec.Chart {
		return nil, r.errorf("spec.chart", "the archive of %s %s from %s holds chart %q", spec.Chart, ref.Version, spec.RepoURL, c.Name())
	}
	lc := &loadedChart{chart: c, root: r.file, folders: map[string][]byte{}, archive: true}
	if err := checkVendored(c); err != nil {
		return nil, r.errorf("spec.chart", "%v", err)
	}
	return lc, nil
}
