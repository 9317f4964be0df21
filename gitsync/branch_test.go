package gitsync

import (
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// TestBranchSwitch: the same sync restarted on another branch (the --ref of a
// server changed) converges to that branch: objects only on the old branch
// are pruned, shared ones updated, new ones created.
func TestBranchSwitch(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	base := r.commit(map[string]string{"a.yaml": configMap("a", "main"), "b.yaml": configMap("b", "main")})
	staging := plumbing.NewBranchReferenceName("staging")
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(staging, plumbing.NewHash(base))); err != nil {
		t.Fatal(err)
	}
	s := newSyncer(t, "apps")
	main := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: s}
	if err := main.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// A commit on staging only.
	wt, err := r.repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: staging}); err != nil {
		t.Fatal(err)
	}
	stagingHead := r.commit(map[string]string{"a.yaml": configMap("a", "staging"), "b.yaml": "", "c.yaml": configMap("c", "staging")})

	switched := &Loop{Source: NewLocalGit(r.dir, "staging"), Syncer: &Syncer{Name: "apps", Store: s.Store, Schema: s.Schema, Prune: true}}
	if err := switched.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st := switched.Status()
	if st.LastApplied.ID != stagingHead || st.Created != 1 || st.Updated != 1 || st.Deleted != 1 {
		t.Errorf("after switching to staging: %+v", st)
	}
	got := configMapsOf(t, s.Store, "apps")
	if !sameMap(got, map[string]string{"default/a": "staging", "default/c": "staging"}) {
		t.Errorf("store after the switch: %v", got)
	}
}
