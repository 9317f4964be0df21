package gitsync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestLoopSkipsKnownRevisions(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: newSyncer(t, "apps")}

	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st := l.Status()
	if st.Reason != ReasonSucceeded || st.LastApplied.ID != c1 || st.Created != 1 || st.Attempts != 1 {
		t.Fatalf("status after first sync: %+v", st)
	}
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.Attempts != 1 {
		t.Errorf("same revision was synced again: %d attempts", st.Attempts)
	}

	bad := r.commit(map[string]string{"b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata: 7\n"})
	if err := l.SyncOnce(ctx); err == nil {
		t.Fatal("a broken revision synced")
	}
	st = l.Status()
	if st.Reason != ReasonValidationFailed || st.LastAttempted.ID != bad || st.LastApplied.ID != c1 {
		t.Errorf("status after a broken commit: %+v", st)
	}
	if len(st.Errors) != 1 || !strings.HasPrefix(st.Errors[0], "b.yaml:5") {
		t.Errorf("errors %q, want one at b.yaml:5", st.Errors)
	}
	if err := l.SyncOnce(ctx); err != nil || l.Status().Attempts != 2 {
		t.Errorf("a known-broken revision was validated again (err %v, %d attempts)", err, l.Status().Attempts)
	}

	fixed := r.commit(map[string]string{"b.yaml": configMap("b", "2")})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.LastApplied.ID != fixed || len(st.Errors) != 0 || st.Created != 1 || st.Unchanged != 1 {
		t.Errorf("status after the fix: %+v", st)
	}

	r.commit(map[string]string{"a.yaml": ""})
	l.Source = NewLocalGit(r.dir+"/missing", "main")
	if err := l.SyncOnce(ctx); err == nil || l.Status().Reason != ReasonFetchFailed || l.Status().LastApplied.ID != fixed {
		t.Errorf("missing repository: err %v status %+v", err, l.Status())
	}
}

func TestLoopRunAndTrigger(t *testing.T) {
	s := newSyncer(t, "apps")
	// A directory source: no change notifications, so only the trigger can
	// make the loop look before the hour is up.
	dir := t.TempDir()
	write := func(v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(configMap("a", v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1")
	statuses := make(chan Status, 16)
	l := &Loop{Source: pollOnly{NewDir(dir)}, Syncer: s, Interval: time.Hour,
		OnStatus: func(st Status) { statuses <- st }}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	next := func() Status {
		t.Helper()
		select {
		case st := <-statuses:
			return st
		case <-time.After(time.Minute):
			t.Fatal("no sync within a minute")
		}
		return Status{}
	}
	first := next()
	if first.Reason != ReasonSucceeded || first.Created != 1 {
		t.Fatalf("first status %+v", first)
	}
	write("2")
	l.Trigger()
	if st := next(); st.LastApplied.ID == first.LastApplied.ID || st.Updated != 1 {
		t.Fatalf("status after trigger %+v", st)
	}
	var cm corev1.ConfigMap
	if err := s.Store.Get(t.Context(), "default", "a", &cm); err != nil || cm.Data["key"] != "2" {
		t.Fatalf("a = %v, %v", cm.Data, err)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v", err)
	}
}

// pollOnly hides a source's Notifier.
type pollOnly struct{ Source }

func TestLoopResyncHealsDrift(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: newSyncer(t, "apps"), Resync: time.Nanosecond}
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	st := l.Syncer.Store
	if err := st.Get(ctx, "default", "a", &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["key"] = "changed behind Git's back"
	if err := st.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if s := l.Status(); s.Updated != 1 || s.Attempts != 2 {
		t.Errorf("resync status %+v", s)
	}
	if err := st.Get(ctx, "default", "a", &cm); err != nil || cm.Data["key"] != "1" {
		t.Errorf("a = %v, %v after resync", cm.Data, err)
	}
}
