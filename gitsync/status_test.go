package gitsync

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

func getSync(t *testing.T, st *store.Store, name string) *keelsonv1alpha1.Sync {
	t.Helper()
	s := &keelsonv1alpha1.Sync{}
	if err := st.Get(t.Context(), "", name, s); err != nil {
		t.Fatalf("sync %s: %v", name, err)
	}
	return s
}

func condition(s *keelsonv1alpha1.Sync, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(s.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{Type: typ, Status: "absent"}
}

// TestSyncStatusObject follows the Sync object through a first sync, a
// broken commit, its fix and a deletion: conditions, revisions with their
// commit, errors with file:line, inventory, history newest first.
func TestSyncStatusObject(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1"), "web/deploy.yaml": deployment("default", "web", 2)})
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: newSyncer(t, "apps")}
	st := l.Syncer.Store

	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	s := getSync(t, st, "apps")
	if c := condition(s, keelsonv1alpha1.ConditionReady); c.Status != metav1.ConditionTrue || c.Reason != ReasonSucceeded {
		t.Errorf("Ready after the first sync: %+v", c)
	}
	if s.Status.LastAppliedRevision != c1 || s.Status.LastApplied == nil || s.Status.LastApplied.Message != "change 1" ||
		s.Status.LastApplied.Author != "Dev <dev@example.com>" || s.Status.LastApplied.Time == nil || !s.Status.LastApplied.FromGit {
		t.Errorf("last applied: %s %+v", s.Status.LastAppliedRevision, s.Status.LastApplied)
	}
	want := []keelsonv1alpha1.ObjectRef{
		{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"},
		{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "a"},
	}
	if len(s.Status.Inventory) != 2 || s.Status.Inventory[0] != want[0] || s.Status.Inventory[1] != want[1] {
		t.Errorf("inventory %+v, want %+v", s.Status.Inventory, want)
	}
	if len(s.Status.History) != 1 || s.Status.History[0].Created != 2 || s.Status.History[0].Result != ReasonSucceeded {
		t.Errorf("history %+v", s.Status.History)
	}
	if s.Spec.URL != l.Source.String() || s.Spec.Interval.Duration != DefaultInterval {
		t.Errorf("spec %+v", s.Spec)
	}

	bad := r.commit(map[string]string{"b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata: 7\n"})
	if err := l.SyncOnce(ctx); err == nil {
		t.Fatal("a broken revision synced")
	}
	s = getSync(t, st, "apps")
	ready, stalled := condition(s, keelsonv1alpha1.ConditionReady), condition(s, keelsonv1alpha1.ConditionStalled)
	if ready.Status != metav1.ConditionFalse || ready.Reason != ReasonValidationFailed || stalled.Status != metav1.ConditionTrue {
		t.Errorf("after a broken commit: Ready %+v, Stalled %+v", ready, stalled)
	}
	if s.Status.LastAttemptedRevision != bad || s.Status.LastAppliedRevision != c1 {
		t.Errorf("revisions: attempted %s applied %s", s.Status.LastAttemptedRevision, s.Status.LastAppliedRevision)
	}
	if len(s.Status.Errors) != 1 || !strings.HasPrefix(s.Status.Errors[0], "b.yaml:5") {
		t.Errorf("errors %q, want one at b.yaml:5", s.Status.Errors)
	}
	if len(s.Status.Inventory) != 2 {
		t.Errorf("a failed attempt changed the inventory: %+v", s.Status.Inventory)
	}

	fixed := r.commit(map[string]string{"b.yaml": configMap("b", "2"), "a.yaml": ""})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	s = getSync(t, st, "apps")
	if c := condition(s, keelsonv1alpha1.ConditionReady); c.Status != metav1.ConditionTrue || s.Status.LastAppliedRevision != fixed || len(s.Status.Errors) != 0 {
		t.Errorf("after the fix: Ready %+v, applied %s, errors %q", c, s.Status.LastAppliedRevision, s.Status.Errors)
	}
	if len(s.Status.Inventory) != 2 || s.Status.Inventory[1].Name != "b" {
		t.Errorf("inventory after a add and a delete: %+v", s.Status.Inventory)
	}
	h := s.Status.History
	if len(h) != 3 || h[0].Revision != fixed || h[0].Created != 1 || h[0].Deleted != 1 || h[0].Unchanged != 1 ||
		h[1].Result != ReasonValidationFailed || h[1].Message == "" || h[2].Revision != c1 {
		t.Errorf("history, newest first: %+v", h)
	}
	if s.Status.ObservedGeneration != s.Generation || s.Generation != 1 {
		t.Errorf("generation %d, observed %d: the spec did not change", s.Generation, s.Status.ObservedGeneration)
	}
}

// TestSyncStatusHistoryIsBounded: the history keeps the last ten attempts.
func TestSyncStatusHistoryIsBounded(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: newSyncer(t, "apps")}
	var last string
	for i := range keelsonv1alpha1.MaxHistory + 3 {
		last = r.commit(map[string]string{"a.yaml": configMap("a", string(rune('a'+i)))})
		if err := l.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s := getSync(t, l.Syncer.Store, "apps")
	if len(s.Status.History) != keelsonv1alpha1.MaxHistory || s.Status.History[0].Revision != last {
		t.Errorf("%d history entries (want %d), newest %s (want %s)", len(s.Status.History), keelsonv1alpha1.MaxHistory, s.Status.History[0].Revision, last)
	}
}

// TestSyncStatusKeepsHealth: the reconciler's health survives gitsync's
// writes, and gitsync's fields survive the reconciler's.
func TestSyncStatusKeepsHealth(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: newSyncer(t, "apps")}
	st := l.Syncer.Store
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	s := getSync(t, st, "apps")
	s.Status.Health = &keelsonv1alpha1.SyncHealth{Status: "Progressing", Revision: s.Status.LastAppliedRevision}
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: keelsonv1alpha1.ConditionHealthy, Status: metav1.ConditionFalse, Reason: "Progressing"})
	if err := st.UpdateStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	r.commit(map[string]string{"a.yaml": configMap("a", "2")})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	s = getSync(t, st, "apps")
	if s.Status.Health == nil || s.Status.Health.Status != "Progressing" || condition(s, keelsonv1alpha1.ConditionHealthy).Reason != "Progressing" {
		t.Errorf("gitsync dropped the reconciler's health: %+v %+v", s.Status.Health, s.Status.Conditions)
	}
	if len(s.Status.History) != 2 {
		t.Errorf("history %+v", s.Status.History)
	}
}

// TestSyncEvents: a Run loop records an Event per attempt on its Sync.
func TestSyncEvents(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: newSyncer(t, "apps")}
	st := l.Syncer.Store
	go l.Run(ctx)
	evs, _ := store.ResourceByName("events")
	waitFor(t, "an event about the applied revision", func() bool {
		list, err := st.List(ctx, evs, store.ListOptions{Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			ev := o.(*corev1.Event)
			if ev.InvolvedObject.Kind == "Sync" && ev.InvolvedObject.Name == "apps" && ev.Reason == ReasonSucceeded &&
				strings.Contains(ev.Message, "1 created") && ev.Source.Component == "gitsync" {
				return true
			}
		}
		return false
	})
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline (a bound on a hang, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
