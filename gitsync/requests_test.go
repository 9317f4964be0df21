package gitsync

import (
	"context"
	"testing"
	"time"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// server is one control-plane process's Syncs over a shared store: the
// repository is polled only every hour and sends no change notifications,
// so only a request makes a sync poll early.
func server(t *testing.T, st *store.Store, repo string) *Syncs {
	t.Helper()
	s, err := NewSyncs([]Config{{Name: "apps", Repo: repo, Ref: "main", Interval: time.Hour, Resync: time.Hour, Prune: true}},
		st, testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := s.Loop("apps")
	l.Source = pollOnly{l.Source}
	return s
}

// lead runs s's loops as the leader would, until the returned stop.
func lead(t *testing.T, s *Syncs) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

func syncObject(t *testing.T, st *store.Store) *keelsonv1alpha1.Sync {
	t.Helper()
	o := &keelsonv1alpha1.Sync{}
	if err := st.Get(t.Context(), "", "apps", o); err != nil {
		t.Fatal(err)
	}
	return o
}

func waitAppliedRevision(t *testing.T, st *store.Store, id string) *keelsonv1alpha1.Sync {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		o := &keelsonv1alpha1.Sync{}
		if err := st.Get(t.Context(), "", "apps", o); err == nil {
			if last = o.Status.LastAppliedRevision; last == id {
				return o
			}
		}
	}
	t.Fatalf("sync applied %q, want %s", last, id)
	return nil
}

func historyRevisions(o *keelsonv1alpha1.Sync) []string {
	var out []string
	for _, a := range o.Status.History {
		out = append(out, a.Revision[:7])
	}
	return out
}

// TestTriggerReachesTheLeader: a request made in a process that does not run
// the syncs (a webhook that reached a follower) makes the leader poll; a new
// leader takes up where the Sync object says the last one stood, so no
// attempt is repeated or lost across the change of leader.
func TestTriggerReachesTheLeader(t *testing.T) {
	st := etcdtest.NewStore(t)
	repo := newRepo(t)
	c1 := repo.commit(map[string]string{"a.yaml": configMap("a", "1")})
	leader, follower := server(t, st, repo.dir), server(t, st, repo.dir)

	stop := lead(t, leader)
	waitAppliedRevision(t, st, c1)
	c2 := repo.commit(map[string]string{"a.yaml": configMap("a", "2")})
	if err := follower.Trigger(t.Context(), "apps"); err != nil {
		t.Fatal(err)
	}
	if syncObject(t, st).Annotations[RequestedAtAnnotation] == "" {
		t.Fatal("the follower's request is not in the Sync object")
	}
	waitAppliedRevision(t, st, c2)

	// The leader goes; the follower leads and resumes: its first poll finds
	// c2 applied and does not apply it again.
	stop()
	lead(t, follower)
	c3 := repo.commit(map[string]string{"a.yaml": configMap("a", "3")})
	// A request made while no one leads yet, or by the new leader itself.
	if err := follower.Trigger(t.Context(), "apps"); err != nil {
		t.Fatal(err)
	}
	o := waitAppliedRevision(t, st, c3)
	got := historyRevisions(o)
	want := []string{c3[:7], c2[:7], c1[:7]}
	if len(got) != len(want) {
		t.Fatalf("attempts %v, want %v: one was repeated or lost across the change of leader", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("attempts %v, want %v", got, want)
		}
	}
}

// TestResumeNotAcrossSpecChange: a sync whose spec changed since the Sync
// object was written (another path) applies the same commit again.
func TestResumeNotAcrossSpecChange(t *testing.T) {
	st := etcdtest.NewStore(t)
	repo := newRepo(t)
	c1 := repo.commit(map[string]string{"a/a.yaml": configMap("a", "1"), "b/b.yaml": configMap("b", "1")})
	first := server(t, st, repo.dir)
	stop := lead(t, first)
	waitAppliedRevision(t, st, c1)
	stop()

	second, err := NewSyncs([]Config{{Name: "apps", Repo: repo.dir, Ref: "main", Path: "b", Interval: time.Hour, Resync: time.Hour, Prune: true}},
		st, testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lead(t, second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n := len(syncObject(t, st).Status.History); n == 2 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%d attempts, want 2: the new path was not applied", n)
		}
	}
}
