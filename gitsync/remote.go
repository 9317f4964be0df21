package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Time limits of one Resolve of a remote: the ref listing is small, a first
// clone of a large repository is not.
const (
	listTimeout  = time.Minute
	fetchTimeout = 10 * time.Minute
)

// RemoteGit is a remote Git repository as a source. It keeps a bare clone in
// a cache folder; each Resolve lists the remote's refs (one round trip) and
// fetches only when the ref points at a commit the clone lacks.
//
// For a branch or a tag the clone is shallow: each fetch asks for the ref's
// commit alone (depth 1), without tags, so a large history is never
// downloaded. Older go-git releases failed such incremental fetches with
// "object not found" after a force push to an older commit; v5.19 fetches
// them, and the tests cover new commits, rewritten history and force pushes
// over file:// and HTTP. For a commit hash the clone is full: a server gives
// only refs' tips, and go-git cannot deepen a shallow clone, so a shallow
// clone is replaced by a full one.
type RemoteGit struct {
	url    string
	ref    string // as given; "" is the remote's HEAD
	dir    string
	auth   Auth
	reader *gitReader

	mu      sync.Mutex
	repo    *git.Repository // open clone, nil until the first Resolve
	suspect bool            // Files failed to read the clone: check it at the next Resolve
}

// NewRemoteGit returns a source reading ref of the repository at url
// (https://, http://, ssh://, git@host:path or file://), cloned into the
// folder cacheDir, which it owns: anything else there is deleted. ref is a
// branch or a tag, short ("main", "v1.2") or full ("refs/heads/main"), or a
// full 40-character commit hash; empty means the remote's HEAD. auth is read
// from its files at each fetch.
func NewRemoteGit(url, ref, cacheDir string, auth Auth, opts ...GitOption) *RemoteGit {
	return &RemoteGit{url: url, ref: ref, dir: cacheDir, auth: auth, reader: newGitReader(opts)}
}

// String returns the URL, without any password in it, and the ref.
func (g *RemoteGit) String() string {
	ref := g.ref
	if ref == "" {
		ref = "HEAD"
	}
	return "git " + redactURL(g.url) + "@" + ref
}

// Resolve lists the remote's refs, fetches the ref's commit when the clone
// lacks it, and returns that commit. A clone found damaged is deleted, logged
// and cloned again. Errors wrap ErrFetch.
func (g *RemoteGit) Resolve(ctx context.Context) (Revision, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.suspect {
		if err := g.check(); err != nil {
			g.discard(err)
		}
		g.suspect = false
	}
	rev, err := g.resolve(ctx)
	var dmg *damagedError
	if errors.As(err, &dmg) {
		g.discard(dmg.err)
		rev, err = g.resolve(ctx)
	}
	if errors.As(err, &dmg) {
		return Revision{}, fmt.Errorf("%w: %s: clone in %s unusable even after cloning again: %v", ErrFetch, redactURL(g.url), g.dir, dmg.err)
	}
	return rev, err
}

// Files returns the tree of the commit rev.ID from the clone; see
// LocalGit.Files. Errors wrap ErrFetch, or ErrVerify (WithVerifyKeys).
func (g *RemoteGit) Files(ctx context.Context, rev Revision) (fs.FS, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.repo == nil {
		return nil, fmt.Errorf("%w: %s: revision %s was not fetched", ErrFetch, redactURL(g.url), rev.Short())
	}
	fsys, err := g.reader.files(ctx, g.repo, redactURL(g.url), rev)
	var noPath *missingPathError
	if err != nil && !errors.Is(err, ErrVerify) && !errors.As(err, &noPath) && ctx.Err() == nil {
		g.suspect = true
	}
	return fsys, err
}

// damagedError is a clone in the cache that cannot be read or updated.
type damagedError struct{ err error }

func (e *damagedError) Error() string { return "damaged clone: " + e.err.Error() }

// discard deletes the clone, so that the next resolve clones afresh.
func (g *RemoteGit) discard(why error) {
	g.reader.log.Warn("cached clone is damaged; deleting it and cloning again", "dir", g.dir, "url", redactURL(g.url), "err", why)
	g.repo = nil
	if err := os.RemoveAll(g.dir); err != nil {
		g.reader.log.Error("cannot delete damaged clone", "dir", g.dir, "err", err)
	}
}

// check reads what the clone's refs point at, to tell whether the clone or
// the network failed a read.
func (g *RemoteGit) check() error {
	if g.repo == nil {
		return nil
	}
	refs, err := g.repo.References()
	if err != nil {
		return err
	}
	return refs.ForEach(func(r *plumbing.Reference) error {
		if r.Type() != plumbing.HashReference {
			return nil
		}
		c, err := peel(g.repo, r.Hash())
		if err != nil {
			return err
		}
		t, err := c.Tree()
		if err != nil {
			return err
		}
		return t.Files().ForEach(func(*object.File) error { return nil })
	})
}

func (g *RemoteGit) resolve(ctx context.Context) (Revision, error) {
	auth, err := g.authMethod()
	if err != nil {
		return Revision{}, err
	}
	repo, err := g.open()
	if err != nil {
		return Revision{}, err
	}
	remote, err := repo.Remote(git.DefaultRemoteName)
	if err != nil {
		return Revision{}, &damagedError{err}
	}
	want, specs, err := g.target(ctx, repo, remote, auth)
	if err != nil {
		return Revision{}, err
	}
	depth := 1
	if isHash(g.ref) {
		depth = 0
		if len(specs) > 0 {
			if repo, remote, err = g.deepen(repo, remote); err != nil {
				return Revision{}, err
			}
		}
	}
	if len(specs) > 0 {
		fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		err = remote.FetchContext(fctx, &git.FetchOptions{RefSpecs: specs, Depth: depth, Auth: auth, Tags: git.NoTags, Force: true})
		cancel()
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return Revision{}, g.fetchError(ctx, "fetch", err)
		}
	}
	c, err := peel(repo, want)
	switch {
	case errors.Is(err, plumbing.ErrObjectNotFound) && isHash(g.ref):
		return Revision{}, fmt.Errorf("%w: commit %s is on no branch or tag of %s: check --ref", ErrFetch, g.ref, redactURL(g.url))
	case err != nil:
		// The remote sent what it had, or the clone claims to hold it.
		return Revision{}, &damagedError{fmt.Errorf("commit %s after fetching: %w", want, err)}
	}
	if _, err := c.Tree(); err != nil {
		return Revision{}, &damagedError{fmt.Errorf("tree of commit %s: %w", want, err)}
	}
	return revisionOf(c), nil
}

// deepen replaces a shallow clone by an empty one, to be fetched in full.
func (g *RemoteGit) deepen(repo *git.Repository, remote *git.Remote) (*git.Repository, *git.Remote, error) {
	shallow, err := repo.Storer.Shallow()
	if err != nil {
		return nil, nil, &damagedError{err}
	}
	if len(shallow) == 0 {
		return repo, remote, nil
	}
	g.reader.log.Info("clone is shallow and the ref is a commit; cloning in full", "dir", g.dir, "url", redactURL(g.url))
	g.repo = nil
	if err := os.RemoveAll(g.dir); err != nil {
		return nil, nil, fmt.Errorf("%w: replace clone in %s: %v", ErrFetch, g.dir, err)
	}
	if repo, err = g.open(); err != nil {
		return nil, nil, err
	}
	if remote, err = repo.Remote(git.DefaultRemoteName); err != nil {
		return nil, nil, &damagedError{err}
	}
	return repo, remote, nil
}

// open returns the clone, opening it, or making an empty one (without
// fetching) when the cache has none. A clone of another URL is replaced.
func (g *RemoteGit) open() (*git.Repository, error) {
	if g.repo != nil {
		return g.repo, nil
	}
	if _, err := os.Stat(g.dir); err == nil {
		repo, err := git.PlainOpen(g.dir)
		if err != nil {
			return nil, &damagedError{err}
		}
		cfg, err := repo.Config()
		if err != nil {
			return nil, &damagedError{err}
		}
		if rc := cfg.Remotes[git.DefaultRemoteName]; rc != nil && len(rc.URLs) == 1 && rc.URLs[0] == g.url {
			g.repo = repo
			return repo, nil
		}
		g.reader.log.Info("cache holds a clone of another repository; cloning afresh", "dir", g.dir, "url", redactURL(g.url))
		if err := os.RemoveAll(g.dir); err != nil {
			return nil, fmt.Errorf("%w: replace clone in %s: %v", ErrFetch, g.dir, err)
		}
	}
	repo, err := git.PlainInit(g.dir, true)
	if err == nil {
		_, err = repo.CreateRemote(&config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{g.url}})
	}
	if err != nil {
		return nil, fmt.Errorf("%w: make a clone of %s in %s: %v", ErrFetch, redactURL(g.url), g.dir, err)
	}
	g.repo = repo
	return repo, nil
}

// target finds the object the ref names and the refspecs that fetch it; no
// refspecs when the clone holds it already. A commit hash the clone holds
// needs no round trip at all: a commit never changes.
func (g *RemoteGit) target(ctx context.Context, repo *git.Repository, remote *git.Remote, auth transport.AuthMethod) (plumbing.Hash, []config.RefSpec, error) {
	if isHash(g.ref) {
		h := plumbing.NewHash(g.ref)
		if have, err := g.has(repo, h); have || err != nil {
			return h, nil, err
		}
		// Servers need not give a commit by hash; every branch and tag will
		// carry it if the remote has it.
		return h, []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}, nil
	}
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	refs, err := remote.ListContext(lctx, &git.ListOptions{Auth: auth})
	cancel()
	if err != nil {
		return plumbing.ZeroHash, nil, g.fetchError(ctx, "list refs of", err)
	}
	ref, err := g.pick(refs)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	if have, err := g.has(repo, ref.Hash()); have || err != nil {
		return ref.Hash(), nil, err
	}
	return ref.Hash(), []config.RefSpec{config.RefSpec("+" + ref.Name() + ":" + ref.Name())}, nil
}

// has tells whether the clone holds the commit (or tag) h, whole.
func (g *RemoteGit) has(repo *git.Repository, h plumbing.Hash) (bool, error) {
	c, err := peel(repo, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return false, nil
	}
	if err == nil {
		_, err = c.Tree()
	}
	if err != nil {
		return false, &damagedError{fmt.Errorf("read %s: %w", h, err)}
	}
	return true, nil
}

// pick finds g.ref among the remote's refs, the way git rev-parse does:
// HEAD, then the full name, then refs/tags/<ref>, then refs/heads/<ref>.
func (g *RemoteGit) pick(refs []*plumbing.Reference) (*plumbing.Reference, error) {
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, r := range refs {
		byName[r.Name()] = r
	}
	names := []string{g.ref, "refs/" + g.ref, "refs/tags/" + g.ref, "refs/heads/" + g.ref}
	if g.ref == "" || g.ref == "HEAD" {
		names = []string{"HEAD"}
	}
	for _, n := range names {
		r := byName[plumbing.ReferenceName(n)]
		if r != nil && r.Type() == plumbing.SymbolicReference {
			r = byName[r.Target()]
		}
		if r != nil && r.Type() == plumbing.HashReference && strings.HasPrefix(string(r.Name()), "refs/") {
			return r, nil
		}
	}
	if g.ref == "" {
		return nil, fmt.Errorf("%w: %s has no HEAD branch: give --ref", ErrFetch, redactURL(g.url))
	}
	return nil, fmt.Errorf("%w: ref %q not found on %s: deleted, or never pushed; the cluster keeps its last revision (give a branch, a tag or a full commit hash)", ErrFetch, g.ref, redactURL(g.url))
}

// isHash tells whether ref is a full commit hash.
func isHash(ref string) bool {
	return plumbing.IsHash(ref)
}
