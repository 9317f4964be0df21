package render

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"
)

const cmYAML = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: b\n"

// TestKustomizeBadInput checks that what keelson does not build (paths out
// of the repository, remote bases and files, charts, exec functions) and
// what kustomize itself refuses are each one clear error naming the
// kustomization file and the entry, that nothing of the unit is rendered,
// and that no network request or git command was attempted.
func TestKustomizeBadInput(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Write([]byte(cmYAML))
	}))
	t.Cleanup(srv.Close)
	bin := t.TempDir()
	marker := filepath.Join(bin, "ran")
	script := "#!/bin/sh\ntouch " + marker + "\nexit 1\n"
	for _, name := range []string{"git", "fn"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)

	for _, tc := range badInputCases(srv.URL) {
		t.Run(tc.name, func(t *testing.T) {
			out := New(Limits{}).Render(t.Context(), mapFS(tc.files), nil)
			checkOneError(t, out, tc.file, tc.want)
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d HTTP requests to the remote files, want none", n)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a command was run")
	}
}

// badInputCase is a tree with one problem, the file its error names and
// what the message says.
type badInputCase struct {
	name  string
	files map[string]string
	file  string
	want  []string
}

// badInputCases are the trees of TestKustomizeBadInput; url serves files
// over HTTP.
func badInputCases(url string) []badInputCase {
	base := map[string]string{"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": cmYAML}
	return []badInputCase{
		{"escape in resources", map[string]string{"app/kustomization.yaml": "resources:\n- cm.yaml\n- ../../../etc\n", "app/cm.yaml": cmYAML},
			"app/kustomization.yaml", []string{"resources[1] ../../../etc: outside the repository"}},
		{"escape in a patch", map[string]string{"app/kustomization.yaml": "resources: [cm.yaml]\npatches:\n- path: ../../etc/passwd\n", "app/cm.yaml": cmYAML},
			"app/kustomization.yaml", []string{"patches[0].path ../../etc/passwd: outside the repository"}},
		{"escape in a base", with(base, map[string]string{"base/kustomization.yaml": "resources: [cm.yaml, ../../up]\n", "app/kustomization.yaml": "resources: [../base]\n"}),
			"base/kustomization.yaml", []string{"resources[1] ../../up: outside the repository", "read by app/kustomization.yaml"}},
		{"https base", map[string]string{"app/kustomization.yaml": "resources:\n- https://github.com/example/repo//deploy?ref=v1\n"},
			"app/kustomization.yaml", []string{"resources[0] https://github.com/example/repo//deploy?ref=v1", "remote base", "no network"}},
		{"github shorthand base", map[string]string{"app/kustomization.yaml": "bases:\n- github.com/example/repo/deploy?ref=main\n"},
			"app/kustomization.yaml", []string{"bases[0] github.com/example/repo/deploy?ref=main", "remote base"}},
		{"git:: base", map[string]string{"app/kustomization.yaml": "resources:\n- git::https://example.com/repo.git//deploy\n"},
			"app/kustomization.yaml", []string{"resources[0] git::https://example.com/repo.git//deploy", "remote base"}},
		{"scp component", map[string]string{"app/kustomization.yaml": "components:\n- git@example.com:org/repo.git/comp\n"},
			"app/kustomization.yaml", []string{"components[0] git@example.com:org/repo.git/comp", "remote base"}},
		{"http resource", map[string]string{"app/kustomization.yaml": "resources:\n- " + url + "/cm.yaml\n"},
			"app/kustomization.yaml", []string{"resources[0] " + url + "/cm.yaml", "remote base or file"}},
		{"http patch", map[string]string{"app/kustomization.yaml": "resources: [cm.yaml]\npatches:\n- path: " + url + "/p.yaml\n", "app/cm.yaml": cmYAML},
			"app/kustomization.yaml", []string{"patches[0].path " + url + "/p.yaml", "remote base or file"}},
		{"helm chart", map[string]string{"app/kustomization.yaml": "helmCharts:\n- name: web\n  repo: https://charts.example.com\n"},
			"app/kustomization.yaml", []string{"helmCharts", "HelmChart object"}},
		{"missing base", map[string]string{"app/kustomization.yaml": "resources: [../nothere]\n"},
			"app/kustomization.yaml", []string{"resources[0] ../nothere", "no such file or folder"}},
		{"exec function", map[string]string{"app/kustomization.yaml": "resources: [cm.yaml]\ntransformers: [fn.yaml]\n", "app/cm.yaml": cmYAML,
			"app/fn.yaml": "apiVersion: example.com/v1\nkind: Fn\nmetadata:\n  name: fn\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: fn\n"},
			"app/kustomization.yaml", []string{"transformers[0] fn.yaml: Fn is not one of kustomize's built-in", "no KRM functions"}},
		{"inline plugin", map[string]string{"app/kustomization.yaml": "resources: [cm.yaml]\ngenerators:\n- |\n  apiVersion: example.com/v1\n  kind: Gen\n  metadata: {name: g}\n", "app/cm.yaml": cmYAML},
			"app/kustomization.yaml", []string{"generators[0] (inline): Gen is not one of"}},
		{"unknown field", map[string]string{"app/kustomization.yaml": "resources: [cm.yaml]\nnamePrefixx: a-\n", "app/cm.yaml": cmYAML},
			"app/kustomization.yaml", []string{"invalid Kustomization", "namePrefixx"}},
		{"kustomize's own error", map[string]string{"app/kustomization.yaml": "resources: [cm.yaml, gone.yaml]\n", "app/cm.yaml": cmYAML},
			"app/kustomization.yaml", []string{"gone.yaml"}},
	}
}

// checkOneError checks that out is one error at file whose message holds
// want and no path of the adapter's fake root, and no object.
func checkOneError(t *testing.T, out *Output, file string, want []string) {
	t.Helper()
	if len(out.Errors) != 1 {
		t.Fatalf("%d errors, want 1: %v", len(out.Errors), out.Errors)
	}
	e := out.Errors[0]
	if e.File != file {
		t.Errorf("error at %s, want %s: %v", e.File, file, e)
	}
	for _, w := range want {
		if !strings.Contains(e.Msg, w) {
			t.Errorf("error %q does not say %q", e.Msg, w)
		}
	}
	if strings.Contains(e.Msg, fakeRoot) {
		t.Errorf("error %q shows the adapter's root", e.Msg)
	}
	if len(out.Docs) != 0 {
		t.Errorf("%d objects rendered, want none", len(out.Docs))
	}
}

// TestKustomizeSymlinkOut checks that a resource that is a symlink to a
// file beside the repository is refused, though the file is a valid
// manifest, and that a symlink inside the repository is followed.
func TestKustomizeSymlinkOut(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"secret.yaml":                 cmYAML,
		"repo/app/kustomization.yaml": "resources: [cm.yaml]\n",
		"repo/shared/cm.yaml":         cmYAML,
		"repo/out/kustomization.yaml": "resources: [cm.yaml]\n",
	})
	if err := os.Symlink("../shared/cm.yaml", filepath.Join(dir, "repo/app/cm.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../secret.yaml", filepath.Join(dir, "repo/out/cm.yaml")); err != nil {
		t.Fatal(err)
	}
	out := New(Limits{}).Render(t.Context(), os.DirFS(filepath.Join(dir, "repo")), []string{"out"})
	checkOneError(t, out, "out/kustomization.yaml", []string{"resources[0] cm.yaml", "symlink out/cm.yaml points to ../../secret.yaml", "outside the repository"})

	out = New(Limits{}).Render(t.Context(), os.DirFS(filepath.Join(dir, "repo")), []string{"app"})
	if len(out.Errors) != 0 || len(out.Docs) != 1 {
		t.Fatalf("a symlink inside the repository: %d objects, errors %v; want 1 object", len(out.Docs), out.Errors)
	}
}

// TestKustomizeLimits checks that a build over the output limit and one
// past its time are errors naming the kustomization, with no object.
func TestKustomizeLimits(t *testing.T) {
	tests := []struct {
		name  string
		fsys  fstest.MapFS
		entry string
		lim   Limits
		want  string
	}{
		{"output", mapFS(kustomizeFixture), "overlays/staging", Limits{MaxOutputBytes: 600}, "renders more than the limit of 600 bytes"},
		{"time before the start", mapFS(kustomizeFixture), "overlays/staging", Limits{Timeout: time.Nanosecond}, "context deadline exceeded"},
		// 300 objects take krusty far longer than 20 ms.
		{"time during the build", overlayTree(300), "overlays/prod", Limits{Timeout: 20 * time.Millisecond}, "not built within the limit of 20ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			t.Cleanup(func() {
				kustomizeRunning.Wait() // a build given up ends at its next read
				if err := goleak.Find(before); err != nil {
					t.Error(err)
				}
			})
			out := New(tc.lim).Render(t.Context(), tc.fsys, []string{tc.entry})
			checkOneError(t, out, tc.entry+"/kustomization.yaml", []string{tc.want})
		})
	}
}

// TestKustomizeCycle checks that kustomizations reading each other are an
// error naming the cycle, reported though each of them is read by another
// (a base's errors are otherwise left to the overlays using it).
func TestKustomizeCycle(t *testing.T) {
	out := New(Limits{}).Render(t.Context(), mapFS(map[string]string{
		"a/kustomization.yaml": "resources: [../b]\n",
		"b/kustomization.yaml": "resources: [../a]\n",
		"c/kustomization.yaml": "resources: [../d]\n",
		"d/kustomization.yaml": "resources: [../e]\n",
		"e/kustomization.yaml": "resources: [../d]\n",
	}), nil)
	var got []string
	for _, e := range out.Errors {
		got = append(got, e.Error())
	}
	want := []string{
		"a/kustomization.yaml: resources[0] ../b: a cycle: b/kustomization.yaml reads a/kustomization.yaml reads b/kustomization.yaml (read by b/kustomization.yaml)",
		"b/kustomization.yaml: resources[0] ../a: a cycle: a/kustomization.yaml reads b/kustomization.yaml reads a/kustomization.yaml (read by a/kustomization.yaml)",
		"e/kustomization.yaml: resources[0] ../d: a cycle: d/kustomization.yaml reads e/kustomization.yaml reads d/kustomization.yaml (read by d/kustomization.yaml)",
	}
	if !slices.Equal(got, want) || len(out.Docs) != 0 {
		t.Errorf("%d objects, errors:\n%s\nwant none and:\n%s", len(out.Docs), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
