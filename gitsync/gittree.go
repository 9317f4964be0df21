package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"sync"
	"testing/fstest"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// GitOption changes how a Git source (LocalGit, RemoteGit) reads revisions.
type GitOption func(*gitReader)

// WithPath makes Files fail with ErrFetch when the folder (or file) dir,
// slash-separated and relative to the repository root, is not in the
// revision: a wrong --path or a folder deleted by mistake then stops the sync
// instead of reading as a revision with no objects.
func WithPath(dir string) GitOption {
	return func(r *gitReader) { r.dir = path.Clean("/" + dir)[1:] }
}

// WithVerifyKeys makes Files refuse, with ErrVerify, a commit that is not
// signed by one of the armored OpenPGP public keys in the file keys. The file
// is read at each check, so replacing it takes effect at the next sync.
func WithVerifyKeys(keys string) GitOption {
	return func(r *gitReader) { r.keysFile = keys }
}

// WithLogger gives a Git source a logger for what it repairs by itself (a
// damaged cache cloned again). Optional.
func WithLogger(log *slog.Logger) GitOption {
	return func(r *gitReader) { r.log = log }
}

// gitReader is what the Git sources share: reading a commit's tree into
// memory, reusing the blobs of the previous tree, after the checks of
// WithPath and WithVerifyKeys.
type gitReader struct {
	dir      string // "" for the whole tree
	keysFile string
	log      *slog.Logger

	mu    sync.Mutex
	blobs map[plumbing.Hash][]byte // the files of the last tree read, by blob hash
	trees treeCache                // the folders of the last tree read
}

func newGitReader(opts []GitOption) *gitReader {
	r := &gitReader{}
	for _, o := range opts {
		o(r)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// revisionOf describes commit c.
func revisionOf(c *object.Commit) Revision {
	return Revision{
		ID:      c.Hash.String(),
		FromGit: true,
		Message: c.Message,
		Author:  c.Author.Name + " <" + c.Author.Email + ">",
		Time:    c.Author.When,
	}
}

// peel returns the commit h names, through annotated tags.
func peel(repo *git.Repository, h plumbing.Hash) (*object.Commit, error) {
	c, err := repo.CommitObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, plumbing.ErrInvalidType) {
		t, terr := repo.TagObject(h)
		if terr == nil {
			c, err = t.Commit()
		}
	}
	return c, err
}

// files returns the tree of the commit rev.ID in repo (described by where in
// messages), read into memory: files as files, symlinks as symlinks (schema
// refuses those that leave the tree), submodules left out. Blobs of the
// previous call's tree are reused, so a commit costs the reading of what it
// changed. The returned files are shared: do not modify them.
func (r *gitReader) files(ctx context.Context, repo *git.Repository, where string, rev Revision) (fs.FS, error) {
	c, err := repo.CommitObject(plumbing.NewHash(rev.ID))
	if err != nil {
		return nil, fmt.Errorf("%w: commit %s in %s: %v", ErrFetch, rev.Short(), where, err)
	}
	if r.keysFile != "" {
		if err := verifyCommit(c, r.keysFile); err != nil {
			return nil, err
		}
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("%w: tree of %s in %s: %v", ErrFetch, rev.Short(), where, err)
	}
	if r.dir != "" {
		if _, err := tree.FindEntry(r.dir); err != nil {
			return nil, &missingPathError{fmt.Sprintf("%v: path %s is not in revision %s of %s: check the path and the ref; nothing was applied", ErrFetch, r.dir, rev.Short(), where)}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	blobs := make(map[plumbing.Hash][]byte, len(r.blobs))
	m := fstest.MapFS{}
	files, err := r.trees.list(ctx, repo, tree)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: walk tree of %s in %s: %v", ErrFetch, rev.Short(), where, err)
	}
	for _, f := range files {
		name, e := f.name, f.entry
		var mode fs.FileMode
		switch e.Mode {
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			mode = 0o644
		case filemode.Symlink:
			mode = fs.ModeSymlink | 0o777
		default:
			continue // directories are implied by their files; submodules are not followed
		}
		data, ok := r.blobs[e.Hash] // a blob's hash is its content: reuse it
		if !ok {
			if data, err = readBlob(repo, e.Hash); err != nil {
				return nil, fmt.Errorf("%w: read %s at %s in %s: %v", ErrFetch, name, rev.Short(), where, err)
			}
		}
		blobs[e.Hash] = data
		m[name] = &fstest.MapFile{Data: data, Mode: mode}
	}
	r.blobs = blobs
	return newTreeFS(m), nil
}

// missingPathError is a revision without the sync's path: the source is
// fine, the revision or the configuration is not. It wraps ErrFetch.
type missingPathError struct{ msg string }

func (e *missingPathError) Error() string { return e.msg }
func (e *missingPathError) Unwrap() error { return ErrFetch }

func readBlob(repo *git.Repository, h plumbing.Hash) ([]byte, error) {
	b, err := repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// blobs reads the blobs of one repository for one plan, each once: a plan
// reads the untouched files to count their objects and again to search them
// (duplicates, CRDs, services), and inflating 2,000 blobs each time cost
// tens of milliseconds.
type blobs struct {
	repo *git.Repository
	mu   sync.Mutex
	m    map[plumbing.Hash][]byte
}

func newBlobs(repo *git.Repository) *blobs {
	return &blobs{repo: repo, m: map[plumbing.Hash][]byte{}}
}

// read returns blob h; the bytes are shared: never modify them.
func (b *blobs) read(h plumbing.Hash) ([]byte, error) {
	b.mu.Lock()
	data, ok := b.m[h]
	b.mu.Unlock()
	if ok {
		return data, nil
	}
	data, err := readBlob(b.repo, h)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.m[h] = data
	b.mu.Unlock()
	return data, nil
}
