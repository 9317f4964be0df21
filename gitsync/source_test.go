package gitsync

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func TestLocalGitResolvesRefs(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	if _, err := r.repo.CreateTag("v1", plumbing.NewHash(c1), nil); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Rel", Email: "rel@example.com"}
	if _, err := r.repo.CreateTag("v1-annotated", plumbing.NewHash(c1), &git.CreateTagOptions{Tagger: sig, Message: "release"}); err != nil {
		t.Fatal(err)
	}
	c2 := r.commit(map[string]string{"a.yaml": configMap("a", "2"), "sub/b.yaml": configMap("b", "1")})

	tests := []struct{ ref, want string }{
		{"main", c2}, {"refs/heads/main", c2}, {"", c2}, {"v1", c1}, {"v1-annotated", c1}, {c1, c1}, {c1[:10], c1},
	}
	for _, tc := range tests {
		rev, err := NewLocalGit(r.dir, tc.ref).Resolve(t.Context())
		if err != nil {
			t.Errorf("ref %q: %v", tc.ref, err)
			continue
		}
		if rev.ID != tc.want || !rev.FromGit {
			t.Errorf("ref %q resolves to %s (git %v), want %s", tc.ref, rev.ID, rev.FromGit, tc.want)
		}
	}
	if _, err := NewLocalGit(r.dir, "nope").Resolve(t.Context()); !errors.Is(err, ErrFetch) {
		t.Errorf("unknown ref: err = %v, want ErrFetch", err)
	}
	if _, err := NewLocalGit(t.TempDir(), "main").Resolve(t.Context()); !errors.Is(err, ErrFetch) {
		t.Errorf("no repository: err = %v, want ErrFetch", err)
	}

	// The tree of an older commit is that commit's, not the work tree's.
	src := NewLocalGit(r.dir, "v1")
	rev, err := src.Resolve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := src.Files(t.Context(), rev)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(fsys, "a.yaml")
	if err != nil || !strings.Contains(string(b), `"1"`) {
		t.Errorf("a.yaml at v1 = %q, %v", b, err)
	}
	if _, err := fs.Stat(fsys, "sub/b.yaml"); err == nil {
		t.Error("sub/b.yaml exists at v1")
	}
	if rev.Message != "change 1" || !strings.Contains(rev.Author, "dev@example.com") {
		t.Errorf("message %q author %q", rev.Message, rev.Author)
	}
}

func TestDirSource(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app/cm.yaml", configMap("dev", "1"))
	write(".git/config", "ignored")
	src := NewDir(dir)
	s := newSyncer(t, "dev")

	r1, err := src.Resolve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r1.FromGit || !strings.HasPrefix(r1.ID, "sha256:") {
		t.Errorf("revision %+v, want a content hash not from Git", r1)
	}
	wantCounts(t, mustApply(t, s, src), 1, 0, 0, 0)
	if again, _ := src.Resolve(t.Context()); again.ID != r1.ID {
		t.Errorf("same files, new revision %s -> %s", r1.ID, again.ID)
	}
	write(".git/config", "changed") // hidden: not part of the revision
	if again, _ := src.Resolve(t.Context()); again.ID != r1.ID {
		t.Error("a hidden file changed the revision")
	}

	write("app/cm.yaml", configMap("dev", "2"))
	res := mustApply(t, s, src)
	if res.Revision.ID == r1.ID {
		t.Error("revision did not change with the content")
	}
	wantCounts(t, res, 0, 1, 0, 0)

	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "app/leak.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := syncNow(t, s, src); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "app/leak.yaml") {
		t.Errorf("symlink out of the tree: err = %v, want ErrInvalid naming it", err)
	}

	stale := Revision{ID: "sha256:0"}
	if _, err := src.Files(t.Context(), stale); !errors.Is(err, ErrFetch) {
		t.Errorf("files of a stale revision: err = %v, want ErrFetch", err)
	}
}
