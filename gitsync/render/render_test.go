package render

import (
	"context"
	"slices"
	"testing"
	"testing/fstest"
)

// A chart folder, a CUE module's folder and an ignored kustomization are
// never plain manifests, and only what is not ignored is rendered.
func TestRenderSkipsWhatIsNotAManifest(t *testing.T) {
	fsys := mapFS(map[string]string{
		"charts/web/Chart.yaml":            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"charts/web/templates/deploy.yaml": "{{ .Values.oops }}\n",
		"ignored/kustomization.yaml":       "resources: [cm.yaml]\n",
		"ignored/cm.yaml":                  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\n",
		".keelsonignore":                   "ignored/\n",
		"app/kustomization.yaml":           "resources: [cm.yaml]\n",
		"app/cm.yaml":                      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
		"plain.yaml":                       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n",
	})
	out := New(Limits{}).Render(t.Context(), fsys, nil)
	if len(out.Errors) > 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	if out.Units != 1 || len(out.Docs) != 1 || out.Docs[0].File != "app/cm.yaml" {
		t.Fatalf("want the app kustomization alone rendered, got %d units, docs %+v", out.Units, out.Docs)
	}
	for _, p := range []string{"charts/web", "app"} {
		if !slices.Contains(out.Skip, p) {
			t.Errorf("%s not left out of the plain manifests: skip %v", p, out.Skip)
		}
	}
	if slices.Contains(out.Skip, "plain.yaml") {
		t.Errorf("a plain manifest is skipped: %v", out.Skip)
	}
}

// The cache keeps two renderings of a unit: a plan renders base and head in
// turn, and neither is built again.
func TestRenderCacheKeepsTwoVersions(t *testing.T) {
	base := mapFS(map[string]string{
		"app/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: base-\n",
		"app/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
	})
	head := mapFS(map[string]string{
		"app/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: head-\n",
		"app/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
	})
	r := New(Limits{})
	steps := []struct {
		name    string
		fsys    fstest.MapFS
		rebuilt int
	}{
		{"base first", base, 1},
		{"head first", head, 1},
		{"base again", base, 0},
		{"head again", head, 0},
	}
	for _, s := range steps {
		out := r.Render(t.Context(), s.fsys, nil)
		if len(out.Errors) > 0 {
			t.Fatalf("%s: %v", s.name, out.Errors)
		}
		if out.Rebuilt != s.rebuilt {
			t.Errorf("%s: rebuilt %d units, want %d", s.name, out.Rebuilt, s.rebuilt)
		}
	}
}

// A rendering the caller ended is not an answer: the next Render builds
// the unit again.
func TestRenderCancelledIsNotCached(t *testing.T) {
	fsys := mapFS(map[string]string{
		"app/kustomization.yaml": "resources: [cm.yaml]\n",
		"app/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
	})
	r := New(Limits{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r.Render(ctx, fsys, nil)
	out := r.Render(t.Context(), fsys, nil)
	if len(out.Errors) > 0 || out.Rebuilt != 1 || len(out.Docs) != 1 {
		t.Fatalf("after a cancelled render: rebuilt %d, docs %d, errors %v", out.Rebuilt, len(out.Docs), out.Errors)
	}
}
