// Package chartrepo fetches Helm charts from the chart repositories a
// keelson server is given, for the HelmCharts that name one (spec.repoURL).
// It is the render.ChartFetcher of a server:
//
//	f, err := chartrepo.New(chartrepo.Options{
//		Dir:          filepath.Join(dataDir, "charts"),
//		Repositories: []string{"https://charts.example.com/stable"},
//		Log:          log,
//	})
//	r := render.New(render.Limits{})
//	r.Charts = f
//
// A repository not given is refused with no network attempt. An HTTP(S)
// repository's index.yaml is fetched at most once per IndexInterval and
// kept on disk: when the repository cannot be reached, the last fetched
// copy answers. A version is exact ("1.2.3") or a semver constraint
// (">=1.2 <2", "~1.2"), which resolves to the highest version listed that
// matches it; an empty version is the highest stable one. Archives are
// checked against the index's digest and kept under Dir by digest, and an
// exact version is remembered with its digest, so that a restart or a
// render again fetches nothing for it.
//
// An OCI registry (oci://host/path) holds chart c at host/path/c, as `helm
// pull oci://host/path/c --version V` finds it, and is read with Helm's
// registry client: an exact version is pulled as the tag it names; a
// constraint resolves against the chart's semver tags, listed at most once
// per IndexInterval and kept on disk like an index. A ChartRef's digest is
// the pulled chart layer's; a tag once pulled is pinned, as version tags
// of charts are not moved. Plain HTTP is spoken only to a loopback host.
//
// Not supported yet: credentials (a repository or registry asking for them
// is an error saying so).
package chartrepo
