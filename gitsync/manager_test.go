package gitsync

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// until polls cond until it holds, failing the test after a minute.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runSyncs runs s until the test ends.
func runSyncs(t *testing.T, s *Syncs) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Syncs.Run returned %v", err)
		}
	})
}

// configMapValue is data.key of ConfigMap default/name, "" when absent.
func configMapValue(t *testing.T, st *store.Store, name string) (value, source string) {
	t.Helper()
	var cm corev1.ConfigMap
	if err := st.Get(t.Context(), "default", name, &cm); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", ""
		}
		t.Fatal(err)
	}
	return cm.Data["key"], cm.Labels["keelson.dev/source"]
}

func TestSyncsTwoSourcesOneStore(t *testing.T) {
	st := etcdtest.NewStore(t)
	a, b := newRepo(t), newRepo(t)
	a.commit(map[string]string{"a.yaml": configMap("from-a", "1")})
	b.commit(map[string]string{"deploy/b.yaml": configMap("from-b", "1")})
	s, err := NewSyncs([]Config{
		{Name: "apps", Repo: a.dir, Ref: "main", Prune: true},
		{Name: "infra", Repo: b.dir, Ref: "main", Path: "deploy", Prune: true},
	}, st, testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Names(); !slices.Equal(got, []string{"apps", "infra"}) {
		t.Fatalf("names %v", got)
	}
	runSyncs(t, s)
	until(t, "both sources synced", func() bool {
		va, sa := configMapValue(t, st, "from-a")
		vb, sb := configMapValue(t, st, "from-b")
		return va == "1" && sa == "apps" && vb == "1" && sb == "infra"
	})
	// A commit to one source leaves the other's objects alone.
	a.commit(map[string]string{"a.yaml": configMap("from-a", "2")})
	until(t, "apps synced its second commit", func() bool {
		v, _ := configMapValue(t, st, "from-a")
		return v == "2"
	})
	if v, src := configMapValue(t, st, "from-b"); v != "1" || src != "infra" {
		t.Errorf("from-b = %q of %q after apps moved", v, src)
	}
	if sts := s.Statuses(); len(sts) != 2 || sts[0].Name != "apps" || sts[1].Name != "infra" {
		t.Errorf("statuses %+v", sts)
	}
	if err := s.Trigger(t.Context(), "nope"); !errors.Is(err, ErrUnknownSync) {
		t.Errorf("Trigger(nope) = %v, want ErrUnknownSync", err)
	}
	if _, ok := s.Loop("nope"); ok {
		t.Error("Loop(nope) found a loop")
	}
}

func TestNewSyncsRefusesDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	_, err := NewSyncs([]Config{{Name: "a", Repo: dir}, {Name: "a", Repo: dir}}, etcdtest.NewStore(t), testSchema(t), nil, nil)
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	_, err = NewSyncs([]Config{{Repo: dir}, {Repo: dir}}, etcdtest.NewStore(t), testSchema(t), nil, nil)
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("two unnamed sources: err = %v, want ErrConfig", err)
	}
}

func TestSuspendKeepsLastAppliedRevision(t *testing.T) {
	st := etcdtest.NewStore(t)
	r := newRepo(t)
	first := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	cfg := Config{Name: "apps", Repo: r.dir, Ref: "main", Prune: true}
	l, err := New(cfg, st, testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}

	// The source is suspended (the server restarted with suspend: true),
	// then a commit lands.
	cfg.Suspend = true
	suspended, err := New(cfg, st, testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.commit(map[string]string{"a.yaml": configMap("a", "2"), "b.yaml": configMap("b", "2")})
	if err := suspended.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, _ := configMapValue(t, st, "a"); v != "1" {
		t.Errorf("a = %q while suspended, want the first commit's 1", v)
	}
	if v, _ := configMapValue(t, st, "b"); v != "" {
		t.Errorf("b exists while suspended: %q", v)
	}
	if s := suspended.Status(); s.Attempts != 0 {
		t.Errorf("a suspended loop attempted a sync: %+v", s)
	}

	// Resumed (suspend removed, the server restarted), the next poll
	// applies the new commit.
	cfg.Suspend = false
	resumed, err := New(cfg, st, testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := resumed.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, _ := configMapValue(t, st, "b"); v != "2" || resumed.Status().LastApplied.ID == first {
		t.Errorf("resumed: b = %q, status %+v", v, resumed.Status())
	}
}

func TestSyncsReload(t *testing.T) {
	st := etcdtest.NewStore(t)
	a, b := newRepo(t), newRepo(t)
	a.commit(map[string]string{"a.yaml": configMap("from-a", "1")})
	b.commit(map[string]string{"b.yaml": configMap("from-b", "1")})
	cfgA := Config{Name: "apps", Repo: a.dir, Ref: "main", Prune: true, Interval: time.Hour, Suspend: true}
	cfgB := Config{Name: "infra", Repo: b.dir, Ref: "main", Prune: true, Interval: time.Hour}
	s, err := NewSyncs([]Config{cfgA, cfgB}, st, testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runSyncs(t, s)
	until(t, "infra synced", func() bool { v, _ := configMapValue(t, st, "from-b"); return v == "1" })
	if v, _ := configMapValue(t, st, "from-a"); v != "" {
		t.Fatalf("suspended apps synced: %q", v)
	}
	infra, _ := s.Loop("infra")

	// Resumed: the edited config no longer suspends apps.
	cfgA.Suspend = false
	if err := s.Reload([]Config{cfgA, cfgB}); err != nil {
		t.Fatal(err)
	}
	until(t, "apps synced once resumed", func() bool { v, _ := configMapValue(t, st, "from-a"); return v == "1" })
	if l, _ := s.Loop("infra"); l != infra {
		t.Error("the unchanged infra sync was replaced")
	}
	if c, _ := s.Config("apps"); c.Suspend {
		t.Error("apps is still suspended in its Config")
	}

	// A config with an error changes nothing.
	if err := s.Reload([]Config{cfgB, cfgB}); !errors.Is(err, ErrConfig) {
		t.Fatalf("reload with a duplicate: %v, want ErrConfig", err)
	}
	if got := s.Names(); !slices.Equal(got, []string{"apps", "infra"}) {
		t.Fatalf("names after a refused reload: %v", got)
	}

	// Removed: apps is stopped and unknown; its objects stay. Its loop ends,
	// which Reload waits for, so a commit after it is never applied.
	appsLoop, _ := s.Loop("apps")
	if err := s.Reload([]Config{cfgB}); err != nil {
		t.Fatal(err)
	}
	if err := s.Trigger(t.Context(), "apps"); !errors.Is(err, ErrUnknownSync) {
		t.Errorf("Trigger(apps) after removal: %v", err)
	}
	attempts := appsLoop.Status().Attempts
	a.commit(map[string]string{"a.yaml": configMap("from-a", "2")})
	appsLoop.Trigger()
	// Reload returned after apps' Run did, so nothing of apps can run now;
	// infra still runs.
	b.commit(map[string]string{"b.yaml": configMap("from-b", "2")})
	until(t, "infra synced its second commit", func() bool { v, _ := configMapValue(t, st, "from-b"); return v == "2" })
	if v, _ := configMapValue(t, st, "from-a"); v != "1" || appsLoop.Status().Attempts != attempts {
		t.Errorf("removed apps: from-a = %q, %d attempts (was %d)", v, appsLoop.Status().Attempts, attempts)
	}
}
