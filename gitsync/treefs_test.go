package gitsync

import (
	"io/fs"
	"testing"
	"testing/fstest"
)

func TestTreeFS(t *testing.T) {
	files := fstest.MapFS{
		"a.yaml":          {Data: []byte("a")},
		"x/b.yaml":        {Data: []byte("bb")},
		"x/y/z/c.yaml":    {Data: []byte("c")},
		"x/y/d.yaml":      {Data: []byte("d")},
		"deep/e/f/g.yaml": {Data: []byte("g")},
	}
	if err := fstest.TestFS(newTreeFS(files), "a.yaml", "x/b.yaml", "x/y/z/c.yaml", "x/y/d.yaml", "deep/e/f/g.yaml"); err != nil {
		t.Fatal(err)
	}
	withLink := fstest.MapFS{"a.yaml": {Data: []byte("a")}, "l.yaml": {Data: []byte("a.yaml"), Mode: fs.ModeSymlink | 0o777}}
	tfs := newTreeFS(withLink)
	if b, err := fs.ReadFile(tfs, "l.yaml"); err != nil || string(b) != "a" {
		t.Errorf("through the symlink: %q, %v", b, err)
	}
	if target, err := fs.ReadLink(tfs, "l.yaml"); err != nil || target != "a.yaml" {
		t.Errorf("ReadLink: %q, %v", target, err)
	}
	if _, err := fs.Stat(newTreeFS(files), "x/missing"); err == nil {
		t.Error("a missing file exists")
	}
}
