package gitsync

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// LocalGit is a Git repository on this machine as a source: no clone, the
// revision is the commit its ref points at.
type LocalGit struct {
	path   string
	ref    string
	reader *gitReader
}

// NewLocalGit returns a source reading ref of the repository at path (a work
// tree or a bare repository). ref is a branch, a tag or a commit hash, in any
// form `git rev-parse` accepts ("main", "v1.2", "refs/heads/main", a hash);
// empty means HEAD.
func NewLocalGit(path, ref string, opts ...GitOption) *LocalGit {
	if ref == "" {
		ref = "HEAD"
	}
	return &LocalGit{path: path, ref: ref, reader: newGitReader(opts)}
}

// String returns the repository path and ref.
func (g *LocalGit) String() string { return "git " + g.path + "@" + g.ref }

// open opens the repository afresh at every call: another process commits,
// repacks and moves refs under us, and a fresh open never sees a stale pack
// index.
func (g *LocalGit) open() (*git.Repository, error) {
	repo, err := git.PlainOpenWithOptions(g.path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("%w: open repository %s: %v", ErrFetch, g.path, err)
	}
	return repo, nil
}

// Resolve returns the commit ref points at now.
func (g *LocalGit) Resolve(ctx context.Context) (Revision, error) {
	repo, err := g.open()
	if err != nil {
		return Revision{}, err
	}
	c, err := g.commit(repo)
	if err != nil {
		return Revision{}, err
	}
	return revisionOf(c), nil
}

func (g *LocalGit) commit(repo *git.Repository) (*object.Commit, error) {
	h, err := repo.ResolveRevision(plumbing.Revision(g.ref))
	if err != nil {
		return nil, fmt.Errorf("%w: resolve %q in %s: %v", ErrFetch, g.ref, g.path, err)
	}
	c, err := peel(repo, *h)
	if err != nil {
		return nil, fmt.Errorf("%w: %q in %s is not a commit: %v", ErrFetch, g.ref, g.path, err)
	}
	return c, nil
}

// Files returns the tree of the commit rev.ID, read into memory: files as
// files, symlinks as symlinks (schema refuses those that leave the tree),
// submodules left out. Blobs of the previous call's tree are reused, so a
// commit costs the reading of what it changed. The returned files are shared:
// do not modify them. Errors wrap ErrFetch, or ErrVerify (WithVerifyKeys).
func (g *LocalGit) Files(ctx context.Context, rev Revision) (fs.FS, error) {
	repo, err := g.open()
	if err != nil {
		return nil, err
	}
	return g.reader.files(ctx, repo, g.path, rev)
}
