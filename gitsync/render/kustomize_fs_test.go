package render

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"
)

// TestTreePath checks the mapping of kustomize's absolute paths to the
// tree's, and that none outside the tree maps.
func TestTreePath(t *testing.T) {
	tests := []struct {
		name, in, want string
		outside        bool
	}{
		{"root", fakeRoot, ".", false},
		{"file", fakeRoot + "/apps/web.yaml", "apps/web.yaml", false},
		{"relative", "apps/../apps/web.yaml", "apps/web.yaml", false},
		{"up to the root", fakeRoot + "/apps/../..", "", true},
		{"beside the root", fakeRoot + "-x/a.yaml", "", true},
		{"elsewhere", "/etc/passwd", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := treePath(tc.in)
			if tc.outside != errors.Is(err, ErrOutside) || got != tc.want {
				t.Errorf("treePath(%q) = %q, %v; want %q, outside %v", tc.in, got, err, tc.want, tc.outside)
			}
		})
	}
}

// TestTreeFS checks the adapter kustomize reads the tree through: reads,
// listings and probes answered from the tree and recorded as the unit's
// inputs.
func TestTreeFS(t *testing.T) {
	tree := newTree(mapFS(map[string]string{"apps/web.yaml": cmYAML, "apps/db.yaml": cmYAML, "apps/sub/x.yaml": cmYAML}))
	f := &treeFS{ctx: t.Context(), t: tree}
	if data, err := f.ReadFile(fakeRoot + "/apps/web.yaml"); err != nil || string(data) != cmYAML {
		t.Errorf("ReadFile: %q, %v", data, err)
	}
	if names, err := f.ReadDir(fakeRoot + "/apps"); err != nil || !slices.Equal(names, []string{"db.yaml", "sub", "web.yaml"}) {
		t.Errorf("ReadDir: %v, %v", names, err)
	}
	if !f.IsDir(fakeRoot+"/apps") || f.IsDir(fakeRoot+"/apps/web.yaml") || f.Exists(fakeRoot+"/apps/gone.yaml") {
		t.Error("IsDir or Exists wrong")
	}
	if d, file, err := f.CleanedAbs(fakeRoot + "/apps/web.yaml"); err != nil || string(d) != fakeRoot+"/apps" || file != "web.yaml" {
		t.Errorf("CleanedAbs of a file: %s, %s, %v", d, file, err)
	}
	if d, file, err := f.CleanedAbs(fakeRoot + "/apps"); err != nil || string(d) != fakeRoot+"/apps" || file != "" {
		t.Errorf("CleanedAbs of a folder: %s, %s, %v", d, file, err)
	}
	if m, err := f.Glob(fakeRoot + "/apps/*.yaml"); err != nil || !slices.Equal(m, []string{fakeRoot + "/apps/db.yaml", fakeRoot + "/apps/web.yaml"}) {
		t.Errorf("Glob: %v, %v", m, err)
	}
	var walked []string
	err := f.Walk(fakeRoot+"/apps", func(p string, _ os.FileInfo, err error) error {
		walked = append(walked, p)
		return err
	})
	if want := []string{fakeRoot + "/apps", fakeRoot + "/apps/db.yaml", fakeRoot + "/apps/sub", fakeRoot + "/apps/sub/x.yaml", fakeRoot + "/apps/web.yaml"}; err != nil || !slices.Equal(walked, want) {
		t.Errorf("Walk: %v, %v; want %v", walked, err, want)
	}
	inputs := tree.digests()
	for _, key := range []string{"apps/web.yaml", "apps/", "apps/gone.yaml/?"} {
		if _, ok := inputs[key]; !ok {
			t.Errorf("%s not recorded as an input: %v", key, inputs)
		}
	}
}

// TestTreeFSRefuses checks that the adapter refuses writes, paths outside
// the tree, a folder read as a file, and every read once the context has
// ended.
func TestTreeFSRefuses(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"apps/web.yaml": cmYAML})
	tree := newTree(os.DirFS(dir))
	f := &treeFS{ctx: t.Context(), t: tree}
	for name, err := range map[string]error{
		"WriteFile": f.WriteFile(fakeRoot+"/apps/web.yaml", nil),
		"MkdirAll":  f.MkdirAll(fakeRoot + "/x"),
		"RemoveAll": f.RemoveAll(fakeRoot + "/apps"),
	} {
		if !errors.Is(err, errReadOnly) {
			t.Errorf("%s: %v, want read-only", name, err)
		}
	}
	if _, err := f.ReadFile("/etc/hostname"); !errors.Is(err, ErrOutside) {
		t.Errorf("reading outside the tree: %v", err)
	}

	if _, err := f.ReadFile(fakeRoot + "/apps"); err == nil {
		t.Error("read a folder as a file")
	}
	if _, _, err := f.CleanedAbs(fakeRoot + "/apps/gone"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CleanedAbs of a missing path: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ended := &treeFS{ctx: ctx, t: tree}
	if _, err := ended.ReadFile(fakeRoot + "/apps/web.yaml"); err == nil {
		t.Error("read after the context ended")
	}
}
