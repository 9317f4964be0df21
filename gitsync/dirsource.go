package gitsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing/fstest"
)

// Dir is a plain directory as a source, for development: no Git, the revision
// is a hash of the paths, modes and contents of its files. Hidden files and
// directories (".git", ".cache", …) are left out.
type Dir struct {
	root string

	mu   sync.Mutex
	last Revision
	snap *treeFS
}

// NewDir returns a source reading the directory root.
func NewDir(root string) *Dir { return &Dir{root: root} }

// String returns the directory.
func (d *Dir) String() string { return "dir " + d.root }

// Resolve reads every file of the directory into a snapshot and returns its
// content hash; Files then serves that snapshot, so a file written between the
// two calls cannot mix two states into one revision.
func (d *Dir) Resolve(ctx context.Context) (Revision, error) {
	snap := fstest.MapFS{}
	h := sha256.New()
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		f, err := d.read(p, e)
		if err != nil || f == nil {
			return err
		}
		snap[rel] = f
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", rel, f.Mode, len(f.Data))
		h.Write(f.Data)
		return nil
	})
	if err != nil {
		return Revision{}, fmt.Errorf("%w: read %s: %v", ErrFetch, d.root, err)
	}
	rev := Revision{ID: "sha256:" + hex.EncodeToString(h.Sum(nil))}
	d.mu.Lock()
	d.last, d.snap = rev, newTreeFS(snap)
	d.mu.Unlock()
	return rev, nil
}

// read returns one entry of the snapshot; nil for directories and special files.
func (d *Dir) read(p string, e fs.DirEntry) (*fstest.MapFile, error) {
	switch {
	case e.IsDir():
		return nil, nil
	case e.Type()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		return &fstest.MapFile{Data: []byte(filepath.ToSlash(target)), Mode: fs.ModeSymlink | 0o777}, nil
	case e.Type().IsRegular():
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		return &fstest.MapFile{Data: b, Mode: 0o644}, nil
	}
	return nil, nil
}

// Files returns the snapshot taken by the Resolve that returned rev.
func (d *Dir) Files(ctx context.Context, rev Revision) (fs.FS, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.snap == nil || d.last.ID != rev.ID {
		return nil, fmt.Errorf("%w: %s changed since revision %s was resolved", ErrFetch, d.root, rev.Short())
	}
	return d.snap, nil
}
