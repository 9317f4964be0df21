package chartrepo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keelson/keelson/gitsync/render"
)

// Errors of a Fetcher, besides render.ErrChartNotFound and
// render.ErrChartVersion.
var (
	// ErrNotEnabled is a repository the server is not given.
	ErrNotEnabled = errors.New("not one of the chart repositories this server fetches from")
	// ErrUnreachable is a repository or archive that could not be fetched.
	ErrUnreachable = errors.New("cannot fetch")
	// ErrAuth is a repository asking for credentials.
	ErrAuth = errors.New("the repository asks for credentials, which keelson does not support for chart repositories yet")
	// ErrDigest is an archive whose digest is not the index's (or, of a
	// registry, the one its tag pointed at before).
	ErrDigest = errors.New("digest mismatch")
	// ErrTooLarge is an index or archive past its bound.
	ErrTooLarge = errors.New("too large")
)

// Defaults of Options.
const (
	DefaultIndexInterval   = 30 * time.Second
	DefaultMaxArchiveBytes = 20 << 20
	DefaultMaxIndexBytes   = 64 << 20
	defaultHTTPTimeout     = 2 * time.Minute
)

// Options configure a Fetcher.
type Options struct {
	// Dir keeps the archives, the exact versions fetched and the last
	// index of each repository (<data-dir>/charts). Required.
	Dir string
	// Repositories are the repositories HelmCharts may name: http(s)://
	// URLs of an index.yaml's folder, or oci://host/path of a registry
	// (plain HTTP only when host is a loopback address). Others are
	// refused.
	Repositories []string
	// IndexInterval is how long a fetched index (or a registry's list of
	// a chart's tags) answers before it is fetched again (DefaultIndexInterval when zero; the server passes its
	// sync interval).
	IndexInterval time.Duration
	// MaxArchiveBytes and MaxIndexBytes bound what is downloaded
	// (defaults when zero); MaxArchiveBytes bounds every blob of a
	// registry.
	MaxArchiveBytes, MaxIndexBytes int64
	// Client makes the requests; one with a timeout when nil.
	Client *http.Client
	// Log gets a line when a last fetched index answers for a repository
	// that cannot be reached.
	Log *slog.Logger
}

// Fetcher is a render.ChartFetcher of HTTP(S) chart repositories and OCI
// registries. Safe for concurrent use.
type Fetcher struct {
	opts    Options
	allowed map[string]bool
	log     *slog.Logger
	disk    *store
	oci     *ociClients // nil when no registry is given

	mu    sync.Mutex
	repos map[string]*repoState
}

var _ render.ChartFetcher = (*Fetcher)(nil)

// New returns a Fetcher of opts.Repositories. Errors name a repository URL
// that is not http(s):// or oci://.
func New(opts Options) (*Fetcher, error) {
	if opts.Dir == "" {
		return nil, errors.New("chart repositories: no directory to keep charts in")
	}
	f := &Fetcher{opts: opts, allowed: map[string]bool{}, repos: map[string]*repoState{}, disk: &store{dir: opts.Dir}}
	for _, r := range opts.Repositories {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "oci") {
			return nil, fmt.Errorf("chart repository %q: want an http://, https:// or oci:// URL with a host", r)
		}
		f.allowed[normalize(r)] = true
	}
	if f.opts.IndexInterval <= 0 {
		f.opts.IndexInterval = DefaultIndexInterval
	}
	if f.opts.MaxArchiveBytes <= 0 {
		f.opts.MaxArchiveBytes = DefaultMaxArchiveBytes
	}
	if f.opts.MaxIndexBytes <= 0 {
		f.opts.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if f.opts.Client == nil {
		f.opts.Client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if slices.ContainsFunc(opts.Repositories, isOCI) {
		oc, err := newOCIClients(f.opts)
		if err != nil {
			return nil, err
		}
		f.oci = oc
	}
	f.log = opts.Log
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.log = f.log.With("component", "chartrepo")
	return f, nil
}

// normalize makes the URLs a server is given and those HelmCharts write
// compare equal when they differ only by a final slash.
func normalize(u string) string { return strings.TrimRight(strings.TrimSpace(u), "/") }

func isOCI(u string) bool { return strings.HasPrefix(strings.TrimSpace(u), "oci://") }

// Resolve finds the version of the chart req names (see render.ChartFetcher).
func (f *Fetcher) Resolve(ctx context.Context, req render.ChartRequest) (render.ChartRef, error) {
	repo := normalize(req.RepoURL)
	if !f.allowed[repo] {
		return render.ChartRef{}, fmt.Errorf("%s is %w (keelson server --chart-repository): add it there, or vendor the chart into the repository", req.RepoURL, ErrNotEnabled)
	}
	exact := isExact(req.Version)
	if exact {
		if ref, ok := f.disk.pinned(repo, req.Chart, req.Version); ok {
			return ref, nil
		}
	}
	if isOCI(repo) {
		return f.resolveOCI(ctx, repo, req)
	}
	idx, err := f.index(ctx, repo)
	if err != nil {
		return render.ChartRef{}, err
	}
	ref, err := idx.resolve(repo, req.Chart, req.Version)
	if err != nil {
		return render.ChartRef{}, err
	}
	if exact {
		f.disk.pin(repo, req.Chart, req.Version, ref)
	}
	return ref, nil
}

// Fetch returns the archive of ref, from Dir when it was fetched before
// (see render.ChartFetcher).
func (f *Fetcher) Fetch(ctx context.Context, req render.ChartRequest, ref render.ChartRef) ([]byte, error) {
	if !f.allowed[normalize(req.RepoURL)] {
		return nil, fmt.Errorf("%s is %w (keelson server --chart-repository)", req.RepoURL, ErrNotEnabled)
	}
	if data, ok := f.disk.archive(ref.Digest); ok {
		return data, nil
	}
	if isOCI(ref.URL) {
		return f.fetchOCI(ref)
	}
	data, err := f.get(ctx, ref.URL, f.opts.MaxArchiveBytes, "archive")
	if err != nil {
		return nil, err
	}
	if got := digestOf(data); got != ref.Digest {
		return nil, fmt.Errorf("%w: the archive at %s is %s, the repository's index says %s: refused, as a changed or corrupt archive", ErrDigest, ref.URL, got, ref.Digest)
	}
	if err := f.disk.keepArchive(ref.Digest, data); err != nil {
		f.log.Warn("chart archive not kept on disk: it will be fetched again", "url", ref.URL, "err", err)
	}
	return data, nil
}
