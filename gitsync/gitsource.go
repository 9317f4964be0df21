package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"testing/fstest"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// LocalGit is a Git repository on this machine as a source: no clone, the
// revision is the commit its ref points at.
type LocalGit struct {
	path string
	ref  string

	mu    sync.Mutex
	blobs map[plumbing.Hash][]byte // the files of the last tree read, by blob hash
}

// NewLocalGit returns a source reading ref of the repository at path (a work
// tree or a bare repository). ref is a branch, a tag or a commit hash, in any
// form `git rev-parse` accepts ("main", "v1.2", "refs/heads/main", a hash);
// empty means HEAD.
func NewLocalGit(path, ref string) *LocalGit {
	if ref == "" {
		ref = "HEAD"
	}
	return &LocalGit{path: path, ref: ref}
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
	return Revision{
		ID:      c.Hash.String(),
		FromGit: true,
		Message: c.Message,
		Author:  c.Author.Name + " <" + c.Author.Email + ">",
		Time:    c.Author.When,
	}, nil
}

func (g *LocalGit) commit(repo *git.Repository) (*object.Commit, error) {
	h, err := repo.ResolveRevision(plumbing.Revision(g.ref))
	if err != nil {
		return nil, fmt.Errorf("%w: resolve %q in %s: %v", ErrFetch, g.ref, g.path, err)
	}
	c, err := repo.CommitObject(*h)
	if errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, plumbing.ErrInvalidType) {
		// An annotated tag: peel it to its commit.
		t, terr := repo.TagObject(*h)
		if terr == nil {
			c, err = t.Commit()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %q in %s is not a commit: %v", ErrFetch, g.ref, g.path, err)
	}
	return c, nil
}

// Files returns the tree of the commit rev.ID, read into memory: files as
// files, symlinks as symlinks (schema refuses those that leave the tree),
// submodules left out. Blobs of the previous call's tree are reused, so a
// commit costs the reading of what it changed. The returned files are shared:
// do not modify them.
func (g *LocalGit) Files(ctx context.Context, rev Revision) (fs.FS, error) {
	repo, err := g.open()
	if err != nil {
		return nil, err
	}
	c, err := repo.CommitObject(plumbing.NewHash(rev.ID))
	if err != nil {
		return nil, fmt.Errorf("%w: commit %s in %s: %v", ErrFetch, rev.Short(), g.path, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("%w: tree of %s: %v", ErrFetch, rev.Short(), err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	blobs := make(map[plumbing.Hash][]byte, len(g.blobs))
	m := fstest.MapFS{}
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, e, err := walker.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: walk tree of %s: %v", ErrFetch, rev.Short(), err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var mode fs.FileMode
		switch e.Mode {
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			mode = 0o644
		case filemode.Symlink:
			mode = fs.ModeSymlink | 0o777
		default:
			continue // directories are implied by their files; submodules are not followed
		}
		data, ok := g.blobs[e.Hash] // a blob's hash is its content: reuse it
		if !ok {
			if data, err = readBlob(repo, e.Hash); err != nil {
				return nil, fmt.Errorf("%w: read %s at %s: %v", ErrFetch, name, rev.Short(), err)
			}
		}
		blobs[e.Hash] = data
		m[name] = &fstest.MapFile{Data: data, Mode: mode}
	}
	g.blobs = blobs
	return newTreeFS(m), nil
}

func readBlob(repo *git.Repository, h plumbing.Hash) ([]byte, error) {
	b, err := repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
