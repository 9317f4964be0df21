package gitsync

import (
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing/fstest"
	"time"
)

// treeFS is a tree of files in memory. fstest.MapFS alone finds the children
// of a folder, or that a path is missing, by scanning every file, which made
// loading 10,000 objects in 2,000 folders quadratic; treeFS answers those from
// an index of folders and leaves the rest (reading, following symlinks) to
// the MapFS.
type treeFS struct {
	fstest.MapFS
	dirs     map[string][]fs.DirEntry // folder -> sorted entries; "." is the root
	symlinks bool
}

func newTreeFS(m fstest.MapFS) *treeFS {
	t := &treeFS{MapFS: m, dirs: map[string][]fs.DirEntry{".": nil}}
	for name, f := range m {
		if f.Mode&fs.ModeSymlink != 0 {
			t.symlinks = true
		}
		child := fs.FileInfoToDirEntry(entryInfo{name: path.Base(name), size: int64(len(f.Data)), mode: f.Mode})
		for dir := path.Dir(name); ; dir = path.Dir(dir) {
			_, seen := t.dirs[dir]
			t.dirs[dir] = append(t.dirs[dir], child)
			if seen || dir == "." {
				break
			}
			child = fs.FileInfoToDirEntry(entryInfo{name: path.Base(dir), mode: fs.ModeDir | 0o755})
		}
	}
	for _, es := range t.dirs {
		slices.SortFunc(es, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	}
	return t
}

// ReadDir lists a folder from the index.
func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if es, ok := t.dirs[name]; ok {
		return slices.Clone(es), nil
	}
	return t.MapFS.ReadDir(name)
}

// Open answers a missing path at once when no symlink could lead to it.
func (t *treeFS) Open(name string) (fs.File, error) {
	if _, ok := t.MapFS[name]; !ok && !t.symlinks && fs.ValidPath(name) {
		if _, isDir := t.dirs[name]; !isDir {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
	}
	return t.MapFS.Open(name)
}

// Stat goes through Open, so that missing paths are quick too.
func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// ReadFile goes through Open, so that missing paths are quick too.
func (t *treeFS) ReadFile(name string) ([]byte, error) {
	if _, ok := t.MapFS[name]; !ok && !t.symlinks {
		if _, err := t.Open(name); err != nil {
			return nil, err
		}
	}
	return t.MapFS.ReadFile(name)
}

// entryInfo describes one entry of a folder.
type entryInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (e entryInfo) Name() string       { return e.name }
func (e entryInfo) Size() int64        { return e.size }
func (e entryInfo) Mode() fs.FileMode  { return e.mode }
func (e entryInfo) ModTime() time.Time { return time.Time{} }
func (e entryInfo) IsDir() bool        { return e.mode.IsDir() }
func (e entryInfo) Sys() any           { return nil }
