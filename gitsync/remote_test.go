package gitsync

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store/etcdtest"
)

// newRemote returns a remote source with a cache of its own.
func newRemote(t *testing.T, url, ref string, opts ...GitOption) *RemoteGit {
	t.Helper()
	return NewRemoteGit(url, ref, filepath.Join(t.TempDir(), "cache"), Auth{}, opts...)
}

// configValue reads data.key of ConfigMap default/name from the store; ""
// when it is absent.
func configValue(t *testing.T, s *Syncer, name string) string {
	t.Helper()
	var cm corev1.ConfigMap
	if err := s.Store.Get(t.Context(), "default", name, &cm); err != nil {
		return ""
	}
	return cm.Data["key"]
}

// resetHard moves the current branch and the work tree to commit, as a
// rewrite of history before a force push does.
func (r *testRepo) resetHard(commit string) {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.Reset(&git.ResetOptions{Commit: plumbing.NewHash(commit), Mode: git.HardReset}); err != nil {
		r.t.Fatal(err)
	}
}

// TestRemoteFileLifecycle follows one remote branch over file:// through a
// first sync, a new commit, rewritten history and a deleted branch.
func TestRemoteFileLifecycle(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	src := newRemote(t, "file://"+r.dir, "main")
	l := &Loop{Source: src, Syncer: newSyncer(t, "apps")}

	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.LastApplied.ID != c1 || st.Created != 1 || st.LastApplied.Message != "change 1" {
		t.Fatalf("first sync: %+v", st)
	}
	clone, err := git.PlainOpen(src.dir)
	if err != nil {
		t.Fatalf("no clone in the cache: %v", err)
	}
	if _, err := clone.CommitObject(plumbing.NewHash(c1)); err != nil {
		t.Fatalf("clone lacks %s: %v", c1, err)
	}
	if shallow, err := clone.Storer.Shallow(); err != nil || len(shallow) == 0 {
		t.Errorf("clone of a branch is not shallow: %v, %v", shallow, err)
	}

	c2 := r.commit(map[string]string{"a.yaml": configMap("a", "2"), "b.yaml": configMap("b", "1")})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.LastApplied.ID != c2 || st.Created != 1 || st.Updated != 1 {
		t.Fatalf("after a new commit: %+v", st)
	}

	// History rewritten: c2 is gone from the branch, c3 sits on c1.
	r.resetHard(c1)
	c3 := r.commit(map[string]string{"a.yaml": configMap("a", "3")})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatalf("after a force push: %v", err)
	}
	if st := l.Status(); st.LastApplied.ID != c3 || st.Deleted != 1 || configValue(t, l.Syncer, "a") != "3" || configValue(t, l.Syncer, "b") != "" {
		t.Fatalf("after a force push: %+v", st)
	}
	// Back to a commit the clone already has: no objects to fetch.
	r.setBranch("main", c1)
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatalf("after a force push to an older commit: %v", err)
	}
	if st := l.Status(); st.LastApplied.ID != c1 || configValue(t, l.Syncer, "a") != "1" {
		t.Fatalf("after a force push to an older commit: %+v", st)
	}

	r.setBranch("other", c1) // the repository keeps a branch
	if err := r.repo.Storer.RemoveReference(plumbing.NewBranchReferenceName("main")); err != nil {
		t.Fatal(err)
	}
	err = l.SyncOnce(ctx)
	if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), `"main" not found`) {
		t.Fatalf("deleted branch: err = %v, want ErrFetch saying the ref is not found", err)
	}
	if st := l.Status(); st.Reason != ReasonFetchFailed || st.LastApplied.ID != c1 || configValue(t, l.Syncer, "a") != "1" {
		t.Errorf("deleted branch changed the cluster: %+v", st)
	}
}

func TestRemoteRefs(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	if _, err := r.repo.CreateTag("v1", plumbing.NewHash(c1), nil); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Rel", Email: "rel@example.com"}
	if _, err := r.repo.CreateTag("v1-annotated", plumbing.NewHash(c1), &git.CreateTagOptions{Tagger: sig, Message: "release"}); err != nil {
		t.Fatal(err)
	}
	c2 := r.commit(map[string]string{"a.yaml": configMap("a", "2")})
	r.resetHard(c1)
	orphan := r.commit(map[string]string{"a.yaml": configMap("a", "lost")})
	r.resetHard(c2) // orphan is on no branch now

	tests := []struct{ ref, want string }{
		{"", c2}, {"HEAD", c2}, {"main", c2}, {"refs/heads/main", c2},
		{"v1", c1}, {"refs/tags/v1", c1}, {"v1-annotated", c1}, {c1, c1}, {c2, c2},
	}
	for _, tc := range tests {
		src := newRemote(t, "file://"+r.dir, tc.ref)
		rev, err := src.Resolve(t.Context())
		if err != nil {
			t.Errorf("ref %q: %v", tc.ref, err)
			continue
		}
		if rev.ID != tc.want || !rev.FromGit {
			t.Errorf("ref %q resolves to %s, want %s", tc.ref, rev.ID, tc.want)
			continue
		}
		fsys, err := src.Files(t.Context(), rev)
		if err != nil {
			t.Errorf("ref %q: files: %v", tc.ref, err)
			continue
		}
		want := map[string]string{c1: `"1"`, c2: `"2"`}[tc.want]
		if b, err := fs.ReadFile(fsys, "a.yaml"); err != nil || !strings.Contains(string(b), want) {
			t.Errorf("ref %q: a.yaml = %q, %v", tc.ref, b, err)
		}
	}
	// One cache through a branch, an older commit (which needs the full
	// history a shallow clone lacks), and the branch again.
	cache := filepath.Join(t.TempDir(), "cache")
	for _, step := range []struct{ ref, want string }{{"main", c2}, {c1, c1}, {"main", c2}} {
		rev, err := NewRemoteGit("file://"+r.dir, step.ref, cache, Auth{}).Resolve(t.Context())
		if err != nil || rev.ID != step.want {
			t.Errorf("shared cache, ref %q: %s, %v; want %s", step.ref, rev.ID, err, step.want)
		}
	}
	for _, ref := range []string{"nope", orphan, c1[:12]} {
		if _, err := newRemote(t, "file://"+r.dir, ref).Resolve(t.Context()); !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), ref) {
			t.Errorf("ref %q: err = %v, want ErrFetch naming it", ref, err)
		}
	}
}

func TestRemoteUnreachable(t *testing.T) {
	closed := etcdtest.FreeURL(t) // a port nobody listens on
	for name, url := range map[string]string{
		"no repository": "file://" + filepath.Join(t.TempDir(), "nope"),
		"closed port":   closed + "/repo.git",
	} {
		t.Run(name, func(t *testing.T) {
			src := newRemote(t, url, "main")
			_, err := src.Resolve(t.Context())
			if !errors.Is(err, ErrFetch) {
				t.Fatalf("err = %v, want ErrFetch", err)
			}
			t.Log(err)
		})
	}
}

// syncLog collects what a source logs.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestRemoteDamagedCacheIsClonedAgain damages the clone while keelson is
// down; the next start finds it, logs it, and clones again.
func TestRemoteDamagedCacheIsClonedAgain(t *testing.T) {
	damages := map[string]struct {
		damage func(t *testing.T, dir string)
		// recloned is false where a fetch of the missing objects repairs
		// the clone without cloning again.
		recloned bool
	}{
		"packs overwritten": {recloned: true, damage: func(t *testing.T, dir string) {
			packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*"))
			if len(packs) == 0 {
				t.Fatal("no packs in the clone")
			}
			for _, p := range packs {
				if err := os.WriteFile(p, []byte("garbage"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}},
		"objects deleted": {recloned: false, damage: func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "objects")); err != nil {
				t.Fatal(err)
			}
		}},
		"config garbled": {recloned: true, damage: func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "config"), []byte("[remote \"origin\"\n\turl = "), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		"HEAD deleted": {recloned: true, damage: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "HEAD")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for name, tc := range damages {
		t.Run(name, func(t *testing.T) {
			r := newRepo(t)
			c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
			cache := filepath.Join(t.TempDir(), "cache")
			if _, err := NewRemoteGit("file://"+r.dir, "main", cache, Auth{}).Resolve(t.Context()); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, cache)

			var logged syncLog
			src := NewRemoteGit("file://"+r.dir, "main", cache, Auth{}, WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
			s := newSyncer(t, "apps")
			res, err := syncNow(t, s, src)
			if err != nil {
				t.Fatalf("sync after the damage: %v", err)
			}
			if res.Revision.ID != c1 || configValue(t, s, "a") != "1" {
				t.Errorf("synced %s, a = %q; want %s, 1", res.Revision.ID, configValue(t, s, "a"), c1)
			}
			if got := strings.Contains(logged.String(), "cloning again"); got != tc.recloned {
				t.Errorf("cloned again: %v, want %v; log: %s", got, tc.recloned, logged.String())
			}
		})
	}
}

// TestRemotePathMissing: a path that is not in the revision stops the sync
// with ErrFetch instead of pruning everything, for remote and local Git.
func TestRemotePathMissing(t *testing.T) {
	r := newRepo(t)
	r.commit(map[string]string{"clusters/prod/a.yaml": configMap("a", "1")})
	for name, repo := range map[string]string{"remote": "file://" + r.dir, "local": r.dir} {
		t.Run(name, func(t *testing.T) {
			s := newSyncer(t, "apps")
			cfg := Config{Name: "apps", Repo: repo, Ref: "main", Path: "clusters/prod", CacheDir: t.TempDir(), Prune: true}
			if name == "local" {
				cfg.CacheDir = ""
			}
			l, err := New(cfg, s.Store, s.Schema, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SyncOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
			r.commit(map[string]string{"clusters/prod/a.yaml": "", "clusters/dev/a.yaml": configMap("a", "2")})
			err = l.SyncOnce(t.Context())
			if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "path clusters/prod is not in revision") {
				t.Fatalf("err = %v, want ErrFetch naming the path", err)
			}
			if st := l.Status(); st.Reason != ReasonFetchFailed || configValue(t, l.Syncer, "a") != "1" {
				t.Errorf("a missing path changed the cluster: %+v", st)
			}
			r.commit(map[string]string{"clusters/prod/a.yaml": configMap("a", "1")})
		})
	}
}

// TestRemoteDamagedWhileRunning: a clone that fails a read between Resolve
// and Files is checked at the next Resolve and cloned again.
func TestRemoteDamagedWhileRunning(t *testing.T) {
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	var logged syncLog
	src := NewRemoteGit("file://"+r.dir, "main", filepath.Join(t.TempDir(), "cache"), Auth{}, WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	rev, err := src.Resolve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(src.dir, "objects", "pack", "*"))
	for _, p := range packs {
		if err := os.WriteFile(p, []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Files(t.Context(), rev); !errors.Is(err, ErrFetch) {
		t.Fatalf("files of a damaged clone: err = %v, want ErrFetch", err)
	}
	again, err := src.Resolve(t.Context())
	if err != nil || again.ID != rev.ID {
		t.Fatalf("resolve after the damage: %s, %v", again.ID, err)
	}
	fsys, err := src.Files(t.Context(), again)
	if err != nil {
		t.Fatalf("files after cloning again: %v", err)
	}
	if b, err := fs.ReadFile(fsys, "a.yaml"); err != nil || !strings.Contains(string(b), `"1"`) {
		t.Errorf("a.yaml = %q, %v", b, err)
	}
	if !strings.Contains(logged.String(), "cloning again") {
		t.Errorf("the new clone was not logged; log: %s", logged.String())
	}
}
