package gitsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // a process of TestCrashDuringStagedApply: never returns
	}
	etcdtest.Main(m)
}

var sharedSchema struct {
	once sync.Once
	s    *schema.Schema
	err  error
}

func testSchema(t testing.TB) *schema.Schema {
	t.Helper()
	sharedSchema.once.Do(func() { sharedSchema.s, sharedSchema.err = schema.Default() })
	if sharedSchema.err != nil {
		t.Fatalf("schema: %v", sharedSchema.err)
	}
	return sharedSchema.s
}

func newSyncer(t testing.TB, name string) *Syncer {
	t.Helper()
	return &Syncer{Name: name, Store: etcdtest.NewStore(t), Schema: testSchema(t), Cache: schema.NewCache(10_000), Prune: true}
}

// testRepo is a real Git repository in a temp dir, written through go-git.
type testRepo struct {
	t    testing.TB
	dir  string
	repo *git.Repository
	n    int
}

func newRepo(t testing.TB) *testRepo {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testRepo{t: t, dir: dir, repo: repo}
}

// commit writes files (an empty content deletes the file) and commits them on
// the current branch.
func (r *testRepo) commit(files map[string]string) string {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if content == "" {
			if _, err := wt.Remove(name); err != nil {
				r.t.Fatalf("git rm %s: %v", name, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	// One add of everything: go-git's Add per file scans the work tree each time.
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatalf("git add: %v", err)
	}
	r.n++
	h, err := wt.Commit(fmt.Sprintf("change %d", r.n), &git.CommitOptions{
		AllowEmptyCommits: true,
		Author:            &object.Signature{Name: "Dev", Email: "dev@example.com", When: time.Unix(1_700_000_000+int64(r.n), 0)},
	})
	if err != nil {
		r.t.Fatalf("git commit: %v", err)
	}
	return h.String()
}

// setBranch points refs/heads/<branch> at commit, as a reset or force push does.
func (r *testRepo) setBranch(branch, commit string) {
	r.t.Helper()
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), plumbing.NewHash(commit))
	if err := r.repo.Storer.SetReference(ref); err != nil {
		r.t.Fatal(err)
	}
}

func configMap(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  key: %q\n", name, value)
}

func namespace(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", name)
}

func deployment(ns, name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      containers:
      - name: app
        image: localhost/%[2]s:1
`, ns, name, replicas)
}

// syncAt applies the commit the source resolves to now.
func syncNow(t testing.TB, s *Syncer, src Source) (*Result, error) {
	t.Helper()
	ctx := context.Background()
	rev, err := src.Resolve(ctx)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	fsys, err := src.Files(ctx, rev)
	if err != nil {
		t.Fatalf("files of %s: %v", rev.ID, err)
	}
	return s.Apply(ctx, rev, fsys)
}
