package chartrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v4/pkg/registry"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/keelson/keelson/gitsync/render"
)

// ociClients are the registry clients of a Fetcher: one speaking TLS, and
// one speaking plain HTTP to registries on this machine's loopback, as
// container engines do for local registries.
type ociClients struct {
	tls, plain *registry.Client
}

// newOCIClients makes the clients of a Fetcher given a registry. They are
// anonymous: keelson passes no credentials of the host (Helm's or Docker's
// files) to a registry. Every response of a blob is bounded by
// MaxArchiveBytes.
func newOCIClients(opts Options) (*ociClients, error) {
	base := opts.Client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc := &http.Client{Timeout: opts.Client.Timeout, Transport: &blobLimit{base: base, limit: opts.MaxArchiveBytes}}
	mk := func(plain bool) (*registry.Client, error) {
		o := []registry.ClientOption{
			registry.ClientOptHTTPClient(hc),
			registry.ClientOptAuthorizer(auth.Client{Client: hc}),
			// a file of the Fetcher's own, never the host's Helm login
			registry.ClientOptCredentialsFile(filepath.Join(opts.Dir, "registry-credentials.json")),
		}
		if plain {
			o = append(o, registry.ClientOptPlainHTTP())
		}
		c, err := registry.NewClient(o...)
		if err != nil {
			return nil, fmt.Errorf("chart registries: %w", err)
		}
		return c, nil
	}
	tls, err := mk(false)
	if err != nil {
		return nil, err
	}
	plain, err := mk(true)
	if err != nil {
		return nil, err
	}
	return &ociClients{tls: tls, plain: plain}, nil
}

// client is the one for host: plain HTTP only to a loopback address.
func (c *ociClients) client(host string) *registry.Client {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return c.plain
	}
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil && ip.IsLoopback() {
		return c.plain
	}
	return c.tls
}

// ociRef is the reference of chart in the registry repo
// ("oci://host/path"), as `helm pull oci://host/path/chart` forms it:
// host/path/chart.
func ociRef(repo, chart string) string {
	return strings.TrimPrefix(repo, "oci://") + "/" + chart
}

// resolveOCI finds the tag of the chart req names in the registry repo and
// the digest of its chart layer. A tag once pulled is taken as immutable,
// as Helm charts' version tags are: it is pinned like an exact version, so
// that a constraint lists tags once per interval but pulls a tag once.
func (f *Fetcher) resolveOCI(ctx context.Context, repo string, req render.ChartRequest) (render.ChartRef, error) {
	ref := ociRef(repo, req.Chart)
	tag := req.Version
	if !isExact(req.Version) {
		idx, err := f.tags(ctx, repo, req.Chart)
		if err != nil {
			return render.ChartRef{}, err
		}
		e, err := idx.pick(repo, req.Chart, req.Version)
		if err != nil {
			return render.ChartRef{}, err
		}
		tag = e.Version
		if r, ok := f.disk.pinned(repo, req.Chart, tag); ok {
			return r, nil
		}
	}
	r, _, err := f.pull(ref + ":" + tag)
	if isNotFound(err) {
		return render.ChartRef{}, f.missingTag(ctx, repo, req.Chart, tag, err)
	}
	if err != nil {
		return render.ChartRef{}, err
	}
	f.disk.pin(repo, req.Chart, tag, r)
	return r, nil
}

// missingTag says why the tag of chart was not found: the registry has no
// such chart, or not that version of it.
func (f *Fetcher) missingTag(ctx context.Context, repo, chart, tag string, err error) error {
	idx, terr := f.tags(ctx, repo, chart)
	switch {
	case terr != nil && errors.Is(terr, render.ErrChartNotFound):
		return terr
	case terr != nil:
		return fmt.Errorf("%w %q: %v; its tags could not be listed: %v", render.ErrChartVersion, tag, err, terr)
	case len(idx.Entries[chart]) == 0:
		return fmt.Errorf("%w: %s has no chart %q with a semver tag (%v)", render.ErrChartNotFound, repo, chart, err)
	}
	_, perr := idx.pick(repo, chart, tag)
	if perr == nil {
		return err // listed, yet not pulled: the registry's own error says why
	}
	return perr
}

// tags lists the versions of chart in the registry repo, as an index of
// one chart with no digests, at most once per interval (see cached).
func (f *Fetcher) tags(ctx context.Context, repo, chart string) (*indexFile, error) {
	ref := ociRef(repo, chart)
	return f.cached(ctx, "oci://"+ref, func() (*indexFile, error) {
		u, _ := url.Parse("oci://" + ref)
		tags, err := f.oci.client(u.Host).Tags(ref)
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: %s has no chart %q (%v)", render.ErrChartNotFound, repo, chart, err)
		}
		if err != nil {
			return nil, ociError("tags of", ref, err)
		}
		idx := &indexFile{Entries: map[string][]indexEntry{chart: {}}}
		for _, t := range tags {
			idx.Entries[chart] = append(idx.Entries[chart], indexEntry{Version: t})
		}
		if data, err := yaml.Marshal(idx); err == nil {
			if err := f.disk.keepIndex("oci://"+ref, data); err != nil {
				f.log.Warn("chart registry tags not kept on disk", "ref", ref, "err", err)
			}
		}
		return idx, nil
	})
}

// pull pulls the chart at ref (host/path/chart:tag), keeps its archive by
// the chart layer's digest, and returns its ChartRef.
func (f *Fetcher) pull(ref string) (render.ChartRef, []byte, error) {
	u, err := url.Parse("oci://" + ref)
	if err != nil {
		return render.ChartRef{}, nil, fmt.Errorf("%w %s: %v", ErrUnreachable, ref, err)
	}
	res, err := f.oci.client(u.Host).Pull(ref)
	if err != nil {
		return render.ChartRef{}, nil, ociError("chart", ref, err)
	}
	data, d := res.Chart.Data, res.Chart.Digest
	if got := digestOf(data); got != d {
		return render.ChartRef{}, nil, fmt.Errorf("%w: the chart layer of %s is %s, its manifest says %s (keelson checks only sha256 digests)", ErrDigest, ref, got, d)
	}
	if err := f.disk.keepArchive(d, data); err != nil {
		f.log.Warn("chart archive not kept on disk: it will be pulled again", "ref", ref, "err", err)
	}
	_, tag, _ := strings.Cut(u.Path, ":")
	return render.ChartRef{Version: tag, Digest: d, URL: "oci://" + ref}, data, nil
}

// fetchOCI pulls ref's archive again when it is not kept on disk: its tag
// must still point at the same chart layer.
func (f *Fetcher) fetchOCI(ref render.ChartRef) ([]byte, error) {
	now, data, err := f.pull(strings.TrimPrefix(ref.URL, "oci://"))
	if err != nil {
		return nil, err
	}
	if now.Digest != ref.Digest {
		return nil, fmt.Errorf("%w: %s is now %s, it was %s: refused, as a tag moved to another chart", ErrDigest, ref.URL, now.Digest, ref.Digest)
	}
	return data, nil
}

// ociError classifies an error of Helm's registry client: too large,
// credentials asked for, not found (see isNotFound), or unreachable.
func ociError(what, ref string, err error) error {
	var resp *errcode.ErrorResponse
	switch {
	case errors.Is(err, ErrTooLarge):
		return fmt.Errorf("%s %s: %w", what, ref, err)
	case errors.As(err, &resp) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		return fmt.Errorf("%s %s: HTTP %d: %w; vendor the chart into the repository", what, ref, resp.StatusCode, ErrAuth)
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return fmt.Errorf("%s %s: HTTP 401: %w; vendor the chart into the repository", what, ref, ErrAuth)
	case isNotFound(err):
		return fmt.Errorf("%s %s: %w", what, ref, err)
	}
	return fmt.Errorf("%w %s %s: %v", ErrUnreachable, what, ref, err)
}

// isNotFound reports whether err is a registry's answer that a repository
// or tag does not exist.
func isNotFound(err error) bool {
	var resp *errcode.ErrorResponse
	return errors.Is(err, errdef.ErrNotFound) || (errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound)
}

// blobLimit bounds what a registry's blob responses may carry, as get
// bounds an HTTP repository's: Helm's client reads a pulled layer whole
// into memory.
type blobLimit struct {
	base  http.RoundTripper
	limit int64
}

// RoundTrip refuses a blob whose announced length is past the bound and
// cuts one that grows past it.
func (b *blobLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(req)
	if err != nil || !strings.Contains(req.URL.Path, "/blobs/") || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	if resp.ContentLength > b.limit {
		resp.Body.Close()
		return nil, fmt.Errorf("the blob at %s is %w: %d bytes, more than keelson's bound of %d", req.URL.Path, ErrTooLarge, resp.ContentLength, b.limit)
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: b.limit, path: req.URL.Path}
	return resp, nil
}

// limitedBody is a response body that fails once more than left bytes
// are read.
type limitedBody struct {
	io.ReadCloser
	left int64
	path string
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.ReadCloser.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, fmt.Errorf("the blob at %s is %w: more than keelson's bound", l.path, ErrTooLarge)
	}
	return n, err
}
