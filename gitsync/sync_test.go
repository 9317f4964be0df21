package gitsync

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/schema"
)

// versions returns the resourceVersion of every object the sync owns.
func versions(t *testing.T, s *Syncer) map[string]string {
	t.Helper()
	owned, err := s.owned(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, o := range owned {
		out[k.String()] = o.GetResourceVersion()
	}
	return out
}

func wantCounts(t *testing.T, res *Result, created, updated, deleted, unchanged int) {
	t.Helper()
	if res.Created != created || res.Updated != updated || res.Deleted != deleted || res.Unchanged != unchanged {
		t.Fatalf("created/updated/deleted/unchanged = %d/%d/%d/%d, want %d/%d/%d/%d; changes %+v",
			res.Created, res.Updated, res.Deleted, res.Unchanged, created, updated, deleted, unchanged, res.Changes)
	}
}

func mustApply(t *testing.T, s *Syncer, src Source) *Result {
	t.Helper()
	res, err := syncNow(t, s, src)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

// TestCommitsToStore walks one repository through the life of a sync: first
// sync, an edit, a deletion, a broken commit, a fix and a revert.
func TestCommitsToStore(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	s := newSyncer(t, "apps")
	s.Path = "deploy"
	src := NewLocalGit(r.dir, "main")

	first := r.commit(map[string]string{
		"deploy/ns.yaml":  namespace("web"),
		"deploy/web.yaml": deployment("web", "web", 2),
		"deploy/cm.yaml":  configMap("settings", "one") + "---\n" + configMap("other", "x"),
		"README.md":       "not a manifest",
		"other/skip.yaml": configMap("outside-path", "x"),
	})

	t.Run("first sync creates", func(t *testing.T) {
		res := mustApply(t, s, src)
		wantCounts(t, res, 4, 0, 0, 0)
		if res.Transactions != 1 {
			t.Errorf("transactions = %d, want 1", res.Transactions)
		}
		if res.Changes[0].Object != "namespaces web" {
			t.Errorf("first change is %s, want the namespace", res.Changes[0].Object)
		}
		var cm corev1.ConfigMap
		if err := s.Store.Get(ctx, "default", "settings", &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Labels[LabelSource] != "apps" || cm.Annotations[AnnotationRevision] != first || cm.Annotations[AnnotationOrigin] != "deploy/cm.yaml:1" {
			t.Errorf("labels %v annotations %v", cm.Labels, cm.Annotations)
		}
		var other corev1.ConfigMap
		if err := s.Store.Get(ctx, "default", "other", &other); err != nil {
			t.Fatal(err)
		}
		if got := other.Annotations[AnnotationOrigin]; got != "deploy/cm.yaml:8" {
			t.Errorf("origin of the second document = %s, want deploy/cm.yaml:8", got)
		}
	})

	t.Run("same revision writes nothing", func(t *testing.T) {
		before := versions(t, s)
		res := mustApply(t, s, src)
		wantCounts(t, res, 0, 0, 0, 4)
		if after := versions(t, s); !equalMaps(before, after) {
			t.Errorf("versions changed: %v -> %v", before, after)
		}
	})

	var edited string
	t.Run("a commit changes one object", func(t *testing.T) {
		before := versions(t, s)
		// Status written by a controller must survive the update.
		var d appsv1.Deployment
		if err := s.Store.Get(ctx, "web", "web", &d); err != nil {
			t.Fatal(err)
		}
		d.Status.ObservedGeneration, d.Status.Replicas = 1, 2
		if err := s.Store.UpdateStatus(ctx, &d); err != nil {
			t.Fatal(err)
		}
		before["deployments.apps web/web"] = d.ResourceVersion

		edited = r.commit(map[string]string{"deploy/web.yaml": deployment("web", "web", 3)})
		res := mustApply(t, s, src)
		wantCounts(t, res, 0, 1, 0, 3)
		after := versions(t, s)
		for k, v := range before {
			if changed := after[k] != v; changed != (k == "deployments.apps web/web") {
				t.Errorf("%s: resourceVersion %s -> %s", k, v, after[k])
			}
		}
		var got appsv1.Deployment
		if err := s.Store.Get(ctx, "web", "web", &got); err != nil {
			t.Fatal(err)
		}
		if *got.Spec.Replicas != 3 || got.Status.Replicas != 2 || got.Generation != 2 || got.Annotations[AnnotationRevision] != edited {
			t.Errorf("replicas %d, status.replicas %d, generation %d, revision %s", *got.Spec.Replicas, got.Status.Replicas, got.Generation, got.Annotations[AnnotationRevision])
		}
		var cm corev1.ConfigMap
		if err := s.Store.Get(ctx, "default", "settings", &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Annotations[AnnotationRevision] != first {
			t.Errorf("unchanged object's revision = %s, want %s", cm.Annotations[AnnotationRevision], first)
		}
	})

	t.Run("a deleted file prunes", func(t *testing.T) {
		r.commit(map[string]string{"deploy/cm.yaml": ""})
		res := mustApply(t, s, src)
		wantCounts(t, res, 0, 0, 2, 2)
		var cm corev1.ConfigMap
		if err := s.Store.Get(ctx, "default", "settings", &cm); err == nil {
			t.Error("settings is still in the store")
		}
	})

	t.Run("a broken commit changes nothing", func(t *testing.T) {
		before := versions(t, s)
		r.commit(map[string]string{
			"deploy/web.yaml": deployment("web", "web", 5),
			"deploy/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Name\n",
			"deploy/ns.yaml":  "",
		})
		res, err := syncNow(t, s, src)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
		var list schema.ErrorList
		if !errors.As(err, &list) || len(res.Errors) == 0 {
			t.Fatalf("no error list: %v", err)
		}
		if e := res.Errors[0]; e.File != "deploy/bad.yaml" || e.Line == 0 || !strings.Contains(err.Error(), "deploy/bad.yaml:") {
			t.Errorf("error %v does not name deploy/bad.yaml:line", err)
		}
		if after := versions(t, s); !equalMaps(before, after) {
			t.Errorf("store changed: %v -> %v", before, after)
		}
	})

	t.Run("a revert restores", func(t *testing.T) {
		r.setBranch("main", first)
		res := mustApply(t, s, src)
		wantCounts(t, res, 2, 1, 0, 1)
		var d appsv1.Deployment
		if err := s.Store.Get(ctx, "web", "web", &d); err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 2 || d.Annotations[AnnotationRevision] != first {
			t.Errorf("replicas %d revision %s, want 2 and %s", *d.Spec.Replicas, d.Annotations[AnnotationRevision], first)
		}
	})

	t.Run("drift is put back", func(t *testing.T) {
		var d appsv1.Deployment
		if err := s.Store.Get(ctx, "web", "web", &d); err != nil {
			t.Fatal(err)
		}
		*d.Spec.Replicas = 9
		d.Labels["extra"] = "x"
		if err := s.Store.Update(ctx, &d); err != nil {
			t.Fatal(err)
		}
		res := mustApply(t, s, src)
		wantCounts(t, res, 0, 1, 0, 3)
		if res.DriftCorrected != 1 || !res.Changes[0].Drift || res.Changes[0].Object != "deployments.apps web/web" {
			t.Errorf("drift corrected %d, first change %+v; want 1 and the Deployment marked as drift", res.DriftCorrected, res.Changes[0])
		}
		if err := s.Store.Get(ctx, "web", "web", &d); err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 2 || d.Labels["extra"] != "" {
			t.Errorf("replicas %d labels %v after self-heal", *d.Spec.Replicas, d.Labels)
		}
	})

	t.Run("a change in Git is not drift", func(t *testing.T) {
		var d appsv1.Deployment
		if err := s.Store.Get(ctx, "web", "web", &d); err != nil {
			t.Fatal(err)
		}
		*d.Spec.Replicas = 9 // changed in the store and in Git alike
		if err := s.Store.Update(ctx, &d); err != nil {
			t.Fatal(err)
		}
		r.commit(map[string]string{ // the work tree still holds the broken commit
			"deploy/ns.yaml":  namespace("web"),
			"deploy/web.yaml": deployment("web", "web", 4),
			"deploy/cm.yaml":  configMap("settings", "one") + "---\n" + configMap("other", "x"),
			"deploy/bad.yaml": "",
		})
		res := mustApply(t, s, src)
		wantCounts(t, res, 0, 1, 0, 3)
		if res.DriftCorrected != 0 || res.Changes[0].Drift {
			t.Errorf("drift corrected %d, first change %+v; a change in Git is not drift", res.DriftCorrected, res.Changes[0])
		}
	})

	t.Run("after a restart nothing is drift", func(t *testing.T) {
		var d appsv1.Deployment
		if err := s.Store.Get(ctx, "web", "web", &d); err != nil {
			t.Fatal(err)
		}
		*d.Spec.Replicas = 9
		if err := s.Store.Update(ctx, &d); err != nil {
			t.Fatal(err)
		}
		restarted := &Syncer{Name: s.Name, Store: s.Store, Schema: s.Schema, Path: s.Path, Prune: true}
		res := mustApply(t, restarted, src)
		wantCounts(t, res, 0, 1, 0, 3)
		if res.DriftCorrected != 0 || res.Changes[0].Drift {
			t.Errorf("drift corrected %d, first change %+v; a new syncer cannot tell drift", res.DriftCorrected, res.Changes[0])
		}
		if err := s.Store.Get(ctx, "web", "web", &d); err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 4 {
			t.Errorf("replicas %d after the restarted sync, want 4", *d.Spec.Replicas)
		}
	})

	t.Run("creations, changes and deletions land together", func(t *testing.T) {
		r.commit(map[string]string{"deploy/extra.yaml": configMap("extra", "1"), "deploy/web.yaml": deployment("web", "web", 6), "deploy/cm.yaml": ""})
		res := mustApply(t, s, src)
		wantCounts(t, res, 1, 1, 2, 1)
		if res.Transactions != 1 {
			t.Errorf("transactions = %d, want 1: a revision that fits in one lands at once", res.Transactions)
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
