package render

import (
	"testing"
	"time"
)

// FuzzRender renders trees whose kustomization, HelmChart file and CUE file
// are arbitrary: whatever they hold, Render returns, with objects or with
// problems naming a file, and never panics.
func FuzzRender(f *testing.F) {
	f.Add("resources: [cm.yaml]\nnamePrefix: a-\n", "apiVersion: keelson.dev/v1alpha1\nkind: HelmChart\nmetadata: {name: web}\nspec: {chart: chart}\n", "package app\ncm: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"c\"}\n")
	f.Add("resources: [../../x]\n", "kind: HelmChart\nspec: [", "a: b\nb: a\n")
	f.Add("patches: [{path: p.yaml}]\nreplacements: [{source: {kind: ConfigMap}}]\n", "---\n- HelmChart\n", "import \"nowhere.example/x\"\nx: x.y\n")
	f.Add("configMapGenerator: [{name: g, literals: [a=b]}]\n", "apiVersion: keelson.dev/v1alpha1\nkind: HelmChart\nmetadata: {name: w}\nspec: {chart: ../../..}\n", "x: [...{a: x}]\n")
	f.Fuzz(func(t *testing.T, kustomization, helmChart, cue string) {
		fsys := mapFS(map[string]string{
			"k/kustomization.yaml":   kustomization,
			"k/cm.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
			"h/release.yaml":         helmChart,
			"chart/Chart.yaml":       "apiVersion: v2\nname: chart\nversion: 0.1.0\n",
			"chart/templates/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\n",
			"c/app.cue":              cue,
		})
		out := New(Limits{Timeout: 2 * time.Second, MaxOutputBytes: 1 << 20}).Render(t.Context(), fsys, nil)
		for _, e := range out.Errors {
			if e.File == "" {
				t.Errorf("a problem names no file: %s", e)
			}
		}
	})
}
