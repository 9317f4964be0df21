package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/keelson/keelson/internal/memfs"
)

// fakeRoot is where kustomize sees the tree: it wants absolute paths, and a
// root below "/" makes "../.." from a top folder land outside the tree,
// where the adapter refuses it, instead of at "/" which would be the tree.
const fakeRoot = "/keelson-repository"

// errReadOnly is the error of every write kustomize attempts.
var errReadOnly = errors.New("the repository is read-only while it is rendered")

// treeFS shows a Tree to kustomize as a kyaml filesys.FileSystem. It reads
// only through t, so that every read, listing and existence probe is an
// input of the unit, and it fails every read once ctx has ended, so that a
// build abandoned at its deadline stops at its next read.
type treeFS struct {
	ctx context.Context
	t   *Tree
	// edit rewrites the content of one file as kustomize reads it (the
	// entry's kustomization, which keelson asks for origins); nil for none.
	edit func(name string, data []byte) ([]byte, error)
}

var _ filesys.FileSystem = (*treeFS)(nil)

// treePath maps a path kustomize uses to the tree's slash path.
func treePath(p string) (string, error) {
	p = filepath.ToSlash(p)
	if !path.IsAbs(p) {
		p = path.Join(fakeRoot, p)
	}
	p = path.Clean(p)
	switch {
	case p == fakeRoot:
		return ".", nil
	case strings.HasPrefix(p, fakeRoot+"/"):
		return strings.TrimPrefix(p, fakeRoot+"/"), nil
	}
	return "", fmt.Errorf("%s: %w", p, ErrOutside)
}

// absPath is the path kustomize sees for a tree path.
func absPath(name string) string {
	if name == "." {
		return fakeRoot
	}
	return fakeRoot + "/" + name
}

// cleanMessage takes the fake root out of kustomize's messages, which name
// files by the absolute paths the adapter gave it.
func cleanMessage(msg string) string {
	msg = strings.ReplaceAll(msg, fakeRoot+"/", "")
	return strings.ReplaceAll(msg, fakeRoot, ".")
}

func (f *treeFS) name(p string) (string, error) {
	if err := f.ctx.Err(); err != nil {
		return "", fmt.Errorf("rendering ended: %w", err)
	}
	return treePath(p)
}

func (f *treeFS) Create(p string) (filesys.File, error) { return nil, f.writeErr(p) }
func (f *treeFS) Mkdir(p string) error                  { return f.writeErr(p) }
func (f *treeFS) MkdirAll(p string) error               { return f.writeErr(p) }
func (f *treeFS) RemoveAll(p string) error              { return f.writeErr(p) }
func (f *treeFS) WriteFile(p string, _ []byte) error    { return f.writeErr(p) }

func (f *treeFS) writeErr(p string) error {
	return fmt.Errorf("write %s: %w", cleanMessage(p), errReadOnly)
}

// ReadFile reads a file of the tree.
func (f *treeFS) ReadFile(p string) ([]byte, error) {
	name, err := f.name(p)
	if err != nil {
		return nil, err
	}
	data, err := f.t.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if f.edit != nil {
		return f.edit(name, data)
	}
	return data, nil
}

// Open opens a file of the tree for reading.
func (f *treeFS) Open(p string) (filesys.File, error) {
	data, err := f.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(data), name: path.Base(p), size: int64(len(data))}, nil
}

// IsDir reports whether p is a folder of the tree.
func (f *treeFS) IsDir(p string) bool {
	name, err := f.name(p)
	if err != nil {
		return false
	}
	info, err := f.t.Stat(name)
	return err == nil && info.IsDir()
}

// Exists reports whether p is in the tree.
func (f *treeFS) Exists(p string) bool {
	name, err := f.name(p)
	if err != nil {
		return false
	}
	_, err = f.t.Stat(name)
	return err == nil
}

// ReadDir lists the names in a folder of the tree.
func (f *treeFS) ReadDir(p string) ([]string, error) {
	name, err := f.name(p)
	if err != nil {
		return nil, err
	}
	es, err := f.t.ReadDir(name)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name()
	}
	return names, nil
}

// CleanedAbs splits p into the folder holding it and its file name (empty
// when p is a folder), as kustomize's loader wants them.
func (f *treeFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	name, err := f.name(p)
	if err != nil {
		return "", "", err
	}
	info, err := f.t.Stat(name)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	if info.IsDir() {
		return filesys.ConfirmedDir(absPath(name)), "", nil
	}
	return filesys.ConfirmedDir(absPath(path.Dir(name))), path.Base(name), nil
}

// Glob matches pattern against the names of one folder; kustomize's build
// does not glob, so a pattern with meta characters in its folder part is
// refused rather than walked.
func (f *treeFS) Glob(pattern string) ([]string, error) {
	dir, base := path.Split(filepath.ToSlash(pattern))
	if strings.ContainsAny(dir, `*?[\`) {
		return nil, fmt.Errorf("glob %s: patterns only in the last element", cleanMessage(pattern))
	}
	names, err := f.ReadDir(path.Clean(dir))
	if err != nil {
		return nil, nil //nolint:nilerr // like filepath.Glob, a missing folder matches nothing
	}
	var out []string
	for _, n := range names {
		if ok, err := path.Match(base, n); err != nil {
			return nil, fmt.Errorf("glob %s: %w", cleanMessage(pattern), err)
		} else if ok {
			out = append(out, path.Join(dir, n))
		}
	}
	return out, nil
}

// Walk walks the tree from p in lexical order, as filepath.Walk does.
func (f *treeFS) Walk(p string, walkFn filepath.WalkFunc) error {
	name, err := f.name(p)
	if err != nil {
		return walkFn(p, nil, err)
	}
	info, err := f.t.Stat(name)
	if err != nil {
		return walkFn(p, nil, err)
	}
	err = f.walk(p, info, walkFn)
	if errors.Is(err, filepath.SkipDir) || errors.Is(err, filepath.SkipAll) {
		return nil
	}
	return err
}

func (f *treeFS) walk(p string, info fs.FileInfo, walkFn filepath.WalkFunc) error {
	if !info.IsDir() {
		return walkFn(p, info, nil)
	}
	names, err := f.ReadDir(p)
	if err := walkFn(p, info, err); err != nil || names == nil {
		return err
	}
	for _, n := range names {
		child := path.Join(p, n)
		name, err := f.name(child)
		if err != nil {
			return err
		}
		ci, err := f.t.Stat(name)
		if err != nil {
			if err := walkFn(child, nil, err); err != nil && !errors.Is(err, filepath.SkipDir) {
				return err
			}
			continue
		}
		if err := f.walk(child, ci, walkFn); err != nil {
			if errors.Is(err, filepath.SkipDir) && ci.IsDir() {
				continue
			}
			return err
		}
	}
	return nil
}

// memFile is a file of the tree opened for reading.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (m *memFile) Write([]byte) (int, error) { return 0, errReadOnly }
func (m *memFile) Close() error              { return nil }
func (m *memFile) Stat() (os.FileInfo, error) {
	return memfs.Info{FileName: m.name, FileSize: m.size}, nil
}
