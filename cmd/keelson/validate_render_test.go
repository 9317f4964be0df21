package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keelson validate of an overlay inside a repository renders it as the sync
// does, reaching the base beside it, and names the base's file for a
// problem of the rendered object.
func TestValidateKustomizeOverlay(t *testing.T) {
	repo := t.TempDir()
	files := map[string]string{
		".git/HEAD":                        "ref: refs/heads/main\n",
		"base/kustomization.yaml":          "resources: [web.yaml]\n",
		"base/web.yaml":                    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: busybox}]}\n",
		"overlays/prod/kustomization.yaml": "namespace: prod\nresources: [../../base]\nreplicas: [{name: web, count: 3}]\n",
		"overlays/bad/kustomization.yaml":  "resources: [../../base]\npatches:\n  - patch: '[{\"op\": \"add\", \"path\": \"/spec/replicas\", \"value\": \"three\"}]'\n    target: {kind: Deployment, name: web}\n",
	}
	for name, data := range files {
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, code := runValidateCmd(t, filepath.Join(repo, "overlays", "prod"))
	if code != 0 || !strings.Contains(out, "1 valid object(s)") {
		t.Errorf("overlay: code %d, output:\n%s", code, out)
	}
	out, code = runValidateCmd(t, filepath.Join(repo, "overlays", "bad"))
	want := filepath.Join(repo, "base", "web.yaml") + ":1: Deployment default/web (rendered by kustomization overlays/bad/kustomization.yaml): spec.replicas"
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("broken overlay: code %d, output:\n%s\nwant %s", code, out, want)
	}
}
