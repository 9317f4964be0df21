package gitsync

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// runLoop runs l until the test ends and returns its statuses.
func runLoop(t *testing.T, l *Loop) <-chan Status {
	t.Helper()
	statuses := make(chan Status, 64)
	l.OnStatus = func(st Status) { statuses <- st }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return statuses
}

// waitApplied waits for a status that applied revision id (or, with id
// empty, any revision other than not).
func waitApplied(t *testing.T, statuses <-chan Status, id, not string) Status {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case st := <-statuses:
			if st.Reason == ReasonSucceeded && (st.LastApplied.ID == id || id == "" && st.LastApplied.ID != not) {
				return st
			}
		case <-timeout:
			t.Fatalf("revision %s not applied within a minute", id)
		}
	}
}

func TestCommitSyncsWithoutWaitingForThePoll(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: newSyncer(t, "apps"), Interval: time.Hour}
	statuses := runLoop(t, l)
	waitApplied(t, statuses, c1, "")
	c2 := r.commit(map[string]string{"b.yaml": configMap("b", "1")})
	if st := waitApplied(t, statuses, c2, ""); st.Created != 1 {
		t.Errorf("status %+v", st)
	}
	r.setBranch("main", c1) // a reset moves the ref too
	if st := waitApplied(t, statuses, c1, ""); st.Deleted != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestDirChangeSyncsWithoutWaitingForThePoll(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(configMap("a", "1")), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &Loop{Source: NewDir(dir), Syncer: newSyncer(t, "dev"), Interval: time.Hour}
	statuses := runLoop(t, l)
	first := waitApplied(t, statuses, "", "")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "b.yaml"), []byte(configMap("b", "1")), 0o644); err != nil {
		t.Fatal(err)
	}
	// Events may come while the file is half written: wait for the state
	// with both objects.
	for {
		st := waitApplied(t, statuses, "", first.LastApplied.ID)
		if st.Created+st.Unchanged == 2 {
			break
		}
		first = st
	}
}
