package gitsync

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
)

// overlayRepo is a base with one ConfigMap and an overlay that puts it in
// namespace prod with a prefix.
var overlayRepo = map[string]string{
	"base/kustomization.yaml":          "resources: [cm.yaml]\n",
	"base/cm.yaml":                     configMap("settings", "base"),
	"overlays/prod/kustomization.yaml": "namespace: prod\nnamePrefix: prod-\nresources:\n  - ../../base\n  - ns.yaml\n",
	"overlays/prod/ns.yaml":            namespace("prod"),
}

// A sync of a kustomize overlay writes the rendered objects, each pointing
// at the file it came from; a change in the base reaches them; a broken
// kustomization stops the revision with its file named and nothing written.
func TestSyncKustomizeOverlay(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	r.commit(overlayRepo)
	s := newSyncer(t, "apps")
	s.Path = "overlays/prod"
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: s}
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if st := l.Status(); st.Created != 2 {
		t.Fatalf("created %d objects, want the namespace and the ConfigMap: %+v", st.Created, st)
	}
	cm := getConfigMap(t, s.Store, "prod", "prod-settings")
	if got := cm.Annotations[AnnotationOrigin]; got != "base/cm.yaml:1" {
		t.Errorf("origin %q, want base/cm.yaml:1", got)
	}

	r.commit(map[string]string{"base/cm.yaml": configMap("settings", "changed")})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatalf("sync of a base change: %v", err)
	}
	if st := l.Status(); st.Updated != 1 || st.Unchanged != 1 {
		t.Errorf("a base change: %+v", l.Status())
	}
	if got := getConfigMap(t, s.Store, "prod", "prod-settings").Data["key"]; got != "changed" {
		t.Errorf("data after a base change: %q", got)
	}

	r.commit(map[string]string{"overlays/prod/kustomization.yaml": "resources:\n  - https://github.com/example/base\n"})
	if err := l.SyncOnce(ctx); err == nil {
		t.Fatal("a kustomization with a remote base synced")
	}
	st := l.Status()
	if st.Reason != ReasonValidationFailed || len(st.Errors) == 0 || !strings.HasPrefix(st.Errors[0], "overlays/prod/kustomization.yaml") {
		t.Errorf("remote base: reason %s errors %q", st.Reason, st.Errors)
	}
	if got := getConfigMap(t, s.Store, "prod", "prod-settings").Data["key"]; got != "changed" {
		t.Errorf("a refused revision changed the store: %q", got)
	}
}

// A plan of a change to a base shows the overlay's object changing, named
// by its file and what rendered it.
func TestPlanKustomizeBaseChange(t *testing.T) {
	r := newRepo(t)
	b := r.commit(overlayRepo)
	r.setBranch("main", b)
	h := r.commit(map[string]string{"base/cm.yaml": configMap("settings", "changed")})
	r.setBranch("pr", h)
	r.setBranch("main", b)
	p, err := PlanGit(t.Context(), r.dir, "main", "pr", PlanOptions{Schema: testSchema(t), Path: "overlays/prod"})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if len(p.Errors) > 0 {
		t.Fatalf("plan errors: %v", p.Errors)
	}
	o := findObject(t, p, "ConfigMap prod/prod-settings")
	if o.Action != Update || o.Origin != "base/cm.yaml:1" || o.RenderedBy != "kustomization overlays/prod/kustomization.yaml" {
		t.Errorf("planned %s from %q rendered by %q", o.Action, o.Origin, o.RenderedBy)
	}
	if !strings.Contains(o.Diff, "changed") {
		t.Errorf("diff does not show the rendered change:\n%s", o.Diff)
	}
	if len(p.Objects) != 1 {
		t.Errorf("want one object planned, got %d", len(p.Objects))
	}
}

func getConfigMap(t *testing.T, s *store.Store, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := s.Get(t.Context(), ns, name, cm); err != nil {
		t.Fatalf("get %s/%s: %v", ns, name, err)
	}
	return cm
}
