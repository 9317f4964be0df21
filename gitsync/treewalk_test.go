package gitsync

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// TestTreeCacheReadsOnlyChangedFolders lists two commits: the second listing
// must equal go-git's own walk and must not read the folders the commit left
// alone, whose objects are removed from the repository to prove it.
func TestTreeCacheReadsOnlyChangedFolders(t *testing.T) {
	r := newRepo(t)
	r.commit(map[string]string{
		"a/one.yaml":     configMap("one", "1"),
		"a/b/two.yaml":   configMap("two", "2"),
		"c/three.yaml":   configMap("three", "3"),
		"c/d/e/four.yml": configMap("four", "4"),
		"top.yaml":       configMap("top", "t"),
	})
	var c treeCache
	first := r.tree(t)
	if got, want := listNames(t, &c, r, first), walkNames(t, first); !slices.Equal(got, want) {
		t.Fatalf("first listing %v, want %v", got, want)
	}

	r.commit(map[string]string{"a/b/two.yaml": configMap("two", "changed"), "a/b/new.yaml": configMap("new", "n")})
	second := r.tree(t)
	var unchanged []string
	for _, dir := range []string{"c", "c/d", "c/d/e"} { // must come from the cache
		e, err := second.FindEntry(dir)
		if err != nil {
			t.Fatal(err)
		}
		unchanged = append(unchanged, e.Hash.String())
	}
	for _, h := range unchanged {
		if err := os.Remove(filepath.Join(r.dir, ".git", "objects", h[:2], h[2:])); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"a/b/new.yaml", "a/b/two.yaml", "a/one.yaml", "c/d/e/four.yml", "c/three.yaml", "top.yaml"}
	if got := listNames(t, &c, r, second); !slices.Equal(got, want) {
		t.Fatalf("second listing %v, want %v", got, want)
	}
	if len(c.entries) != 6 { // the root, a, a/b, c, c/d, c/d/e; not the first tree's a and a/b
		t.Errorf("cache holds %d folders, want the 6 of the second tree", len(c.entries))
	}
}

func (r *testRepo) tree(t *testing.T) *object.Tree {
	t.Helper()
	head, err := r.repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.repo.CommitObject(head.Hash())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.Tree()
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func listNames(t *testing.T, c *treeCache, r *testRepo, tree *object.Tree) []string {
	t.Helper()
	files, err := c.list(t.Context(), r.repo, tree)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		out = append(out, f.name)
	}
	slices.Sort(out)
	return out
}

func walkNames(t *testing.T, tree *object.Tree) []string {
	t.Helper()
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	var out []string
	for {
		name, e, err := w.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Mode.IsFile() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
