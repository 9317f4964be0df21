package chartrepo

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"

	"github.com/keelson/keelson/gitsync/render"
)

// indexFile is what keelson reads of a repository's index.yaml.
type indexFile struct {
	Entries map[string][]indexEntry `yaml:"entries"`
}

type indexEntry struct {
	Version string   `yaml:"version"`
	Digest  string   `yaml:"digest"`
	URLs    []string `yaml:"urls"`
}

// repoState is one repository's index, as last fetched.
type repoState struct {
	mu      sync.Mutex
	index   *indexFile
	tried   time.Time // the last attempt, whatever came of it
	lastErr error     // its error, when no index answers
}

// index returns repo's index (see cached).
func (f *Fetcher) index(ctx context.Context, repo string) (*indexFile, error) {
	return f.cached(ctx, repo, func() (*indexFile, error) { return f.fetchIndex(ctx, repo) })
}

// cached returns the index of key (a repository's URL; for a registry, the
// chart's repository in it): the one in memory while younger than the
// interval, else fetched again. A repository that cannot be reached is
// answered by the last copy fetched (kept on disk across restarts), and
// tried again at most once per interval.
func (f *Fetcher) cached(ctx context.Context, key string, fetch func() (*indexFile, error)) (*indexFile, error) {
	f.mu.Lock()
	st := f.repos[key]
	if st == nil {
		st = &repoState{}
		f.repos[key] = st
	}
	f.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.tried.IsZero() && time.Since(st.tried) < f.opts.IndexInterval {
		if st.index != nil {
			return st.index, nil
		}
		return nil, st.lastErr
	}
	st.tried = time.Now()
	idx, err := fetch()
	if err == nil {
		st.index, st.lastErr = idx, nil
		return idx, nil
	}
	if st.index == nil {
		st.index = f.keptIndex(key)
	}
	if st.index != nil {
		f.log.Warn("chart repository not reached: the versions it last listed answer", "repo", key, "err", err)
		return st.index, nil
	}
	st.lastErr = fmt.Errorf("%w; no copy of its index was fetched before", err)
	return nil, st.lastErr
}

func (f *Fetcher) fetchIndex(ctx context.Context, repo string) (*indexFile, error) {
	data, err := f.get(ctx, repo+"/index.yaml", f.opts.MaxIndexBytes, "index")
	if err != nil {
		return nil, err
	}
	idx, err := parseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("%s/index.yaml: %w", repo, err)
	}
	if err := f.disk.keepIndex(repo, data); err != nil {
		f.log.Warn("chart repository index not kept on disk", "repo", repo, "err", err)
	}
	return idx, nil
}

// keptIndex is the copy of repo's index on disk, if any and readable.
func (f *Fetcher) keptIndex(repo string) *indexFile {
	data, ok := f.disk.index(repo)
	if !ok {
		return nil
	}
	idx, err := parseIndex(data)
	if err != nil {
		return nil
	}
	return idx
}

func parseIndex(data []byte) (*indexFile, error) {
	var idx indexFile
	if err := yaml.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("not a chart repository index: %w", err)
	}
	if idx.Entries == nil {
		return nil, fmt.Errorf("not a chart repository index: no entries")
	}
	return &idx, nil
}

// isExact reports whether v names one version rather than a constraint.
func isExact(v string) bool {
	_, err := semver.StrictNewVersion(strings.TrimPrefix(v, "v"))
	return err == nil
}

// resolve picks the version of chart that version names: exact, or the
// highest matching a constraint (the highest stable one when empty).
func (idx *indexFile) resolve(repo, chart, version string) (render.ChartRef, error) {
	e, err := idx.pick(repo, chart, version)
	if err != nil {
		return render.ChartRef{}, err
	}
	return entryRef(repo, chart, e)
}

// pick is the entry of chart that version names: exact, or the highest
// matching a constraint (the highest stable one when empty).
func (idx *indexFile) pick(repo, chart, version string) (*indexEntry, error) {
	entries := idx.Entries[chart]
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: %s lists no chart %q", render.ErrChartNotFound, repo, chart)
	}
	match, err := matcher(version)
	if err != nil {
		return nil, err
	}
	var best *indexEntry
	var bestV *semver.Version
	var listed []*semver.Version
	for i := range entries {
		e := &entries[i]
		v, err := semver.NewVersion(e.Version)
		if err != nil {
			continue // a version keelson cannot order is never picked
		}
		listed = append(listed, v)
		if match(v) && (bestV == nil || v.GreaterThan(bestV)) {
			best, bestV = e, v
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w %q: %s has %s", render.ErrChartVersion, cmp.Or(version, "(the newest stable)"), chart, versionList(listed))
	}
	return best, nil
}

func entryRef(repo, chart string, e *indexEntry) (render.ChartRef, error) {
	if len(e.URLs) == 0 {
		return render.ChartRef{}, fmt.Errorf("%w: the index gives no URL for %s %s", ErrUnreachable, chart, e.Version)
	}
	if len(e.Digest) != 64 {
		return render.ChartRef{}, fmt.Errorf("%w: the index gives no sha256 digest for %s %s, and keelson fetches only archives it can check", ErrDigest, chart, e.Version)
	}
	base, err := url.Parse(repo + "/")
	if err != nil {
		return render.ChartRef{}, fmt.Errorf("repository %s: %w", repo, err)
	}
	u, err := base.Parse(e.URLs[0])
	if err != nil {
		return render.ChartRef{}, fmt.Errorf("%w: the index's URL %q for %s %s: %v", ErrUnreachable, e.URLs[0], chart, e.Version, err)
	}
	return render.ChartRef{Version: e.Version, Digest: "sha256:" + strings.ToLower(e.Digest), URL: u.String()}, nil
}

// matcher tells the versions that version names: one, when it is exact;
// those a constraint allows; the stable ones when it is empty.
func matcher(version string) (func(*semver.Version) bool, error) {
	if isExact(version) {
		want, err := semver.NewVersion(version)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", render.ErrChartVersion, version, err)
		}
		return want.Equal, nil
	}
	cons, err := semver.NewConstraint(cmp.Or(version, "*"))
	if err != nil {
		return nil, fmt.Errorf("%w: %q is neither a version nor a semver constraint: %v", render.ErrChartVersion, version, err)
	}
	return cons.Check, nil
}

// versionList says which versions a repository has, the newest first.
func versionList(vs []*semver.Version) string {
	if len(vs) == 0 {
		return "no version keelson can read"
	}
	slices.SortFunc(vs, func(a, b *semver.Version) int { return b.Compare(a) })
	var s []string
	for i, v := range vs {
		if i == 10 {
			s = append(s, fmt.Sprintf("and %d older", len(vs)-10))
			break
		}
		s = append(s, v.Original())
	}
	return strings.Join(s, ", ")
}
