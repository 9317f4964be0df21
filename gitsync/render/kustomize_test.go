package render

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/keelson/keelson/schema"
)

// krustyBuild builds the kustomization in folder entry of dir on disk with
// krusty itself, with keelson's load restrictions, and returns its objects
// as YAML.
func krustyBuild(t *testing.T, dir, entry string) [][]byte {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), filepath.Join(dir, entry))
	if err != nil {
		t.Fatalf("krusty build %s: %v", entry, err)
	}
	var out [][]byte
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, y)
	}
	return out
}

// docsVia returns the docs of out rendered by the kustomization file kfile.
func docsVia(out *Output, kfile string) []schema.Doc {
	var docs []schema.Doc
	for _, d := range out.Docs {
		if d.Via == "kustomization "+kfile {
			docs = append(docs, d)
		}
	}
	return docs
}

func renderOK(t *testing.T, r *Renderer, fsys fstest.MapFS) *Output {
	t.Helper()
	out := r.Render(t.Context(), fsys, nil)
	if len(out.Errors) > 0 {
		t.Fatalf("render: %v", out.Errors)
	}
	return out
}

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return fsys
}

// TestKustomizeMatchesKrusty renders the fixture's overlays on the tree in
// memory and checks each against krusty's own build of the same files on
// disk: the same objects, in the same order, with the same content, and
// each pointing at the file a person edits to change it.
func TestKustomizeMatchesKrusty(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, kustomizeFixture)
	out := New(Limits{}).Render(t.Context(), os.DirFS(dir), nil)
	if len(out.Errors) > 0 {
		t.Fatalf("render: %v", out.Errors)
	}
	if out.Units != 4 {
		t.Errorf("%d units, want 4 (base, component, two overlays)", out.Units)
	}
	wantFiles := map[string][]string{
		"overlays/staging": {"base/deploy.yaml", "base/service.yaml", "base/kustomization.yaml"},
		"overlays/production": {"base/deploy.yaml", "base/service.yaml", "base/kustomization.yaml",
			"overlays/production/extra.yaml", "overlays/production/kustomization.yaml", "components/audit/audit.yaml"},
	}
	for _, entry := range []string{"overlays/staging", "overlays/production"} {
		t.Run(entry, func(t *testing.T) {
			want := krustyBuild(t, dir, entry)
			got := docsVia(out, entry+"/kustomization.yaml")
			if len(got) != len(want) {
				t.Fatalf("%d objects, krusty builds %d", len(got), len(want))
			}
			var files []string
			for i, d := range got {
				if !bytes.Equal(d.Data, want[i]) {
					t.Errorf("object %d:\n%s\nkrusty builds:\n%s", i, d.Data, want[i])
				}
				if !slices.Contains(files, d.File) {
					files = append(files, d.File)
				}
			}
			if !slices.Equal(files, wantFiles[entry]) {
				t.Errorf("objects come from %v, want %v", files, wantFiles[entry])
			}
		})
	}
	// The fixture exercises what it claims to: hashed generated names
	// referenced by the Deployment, prefixes, images, replacements.
	all := string(bytes.Join(docsData(out.Docs), []byte("---\n")))
	for _, s := range []string{"name: staging-web-config-", "name: web-config-prod-", "image: shop/web:1.1",
		"image: registry.example.com/shop/web@sha256:", "targetPort: 9090", "replicas: 5", "name: web-secret-prod-",
		"audit.example.com/enabled", "port: 8080", "value: staging", "team: web"} {
		if !strings.Contains(all, s) {
			t.Errorf("no %q in the rendered objects", s)
		}
	}
	if strings.Contains(all, "config.kubernetes.io/origin") {
		t.Error("origin annotations left in the rendered objects")
	}
}

func docsData(docs []schema.Doc) [][]byte {
	out := make([][]byte, len(docs))
	for i, d := range docs {
		out[i] = d.Data
	}
	return out
}

// TestKustomizeNotReadTwice checks that a base and a component used by
// overlays are neither built on their own nor read as plain manifests.
func TestKustomizeNotReadTwice(t *testing.T) {
	fsys := mapFS(with(kustomizeFixture, map[string]string{"plain/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n"}))
	out := renderOK(t, New(Limits{}), fsys)
	vias := map[string]bool{}
	for _, d := range out.Docs {
		vias[d.Via] = true
	}
	want := map[string]bool{"kustomization overlays/staging/kustomization.yaml": true, "kustomization overlays/production/kustomization.yaml": true}
	if len(vias) != len(want) || !vias["kustomization overlays/staging/kustomization.yaml"] || !vias["kustomization overlays/production/kustomization.yaml"] {
		t.Errorf("objects rendered by %v, want only the two overlays", vias)
	}
	for _, p := range []string{"base", "base/deploy.yaml", "base/settings.properties", "components/audit", "components/audit/audit.yaml", "overlays/production"} {
		if !slices.Contains(out.Skip, p) {
			t.Errorf("Skip %v lacks %s", out.Skip, p)
		}
	}
	if slices.Contains(out.Skip, "plain/cm.yaml") || slices.Contains(out.Skip, "plain") {
		t.Errorf("Skip %v holds a plain manifest", out.Skip)
	}
	// A component is built only inside the kustomizations using it: alone,
	// it is neither an error nor read as plain manifests.
	if comp := New(Limits{}).Render(t.Context(), fsys, []string{"components"}); len(comp.Docs) != 0 || len(comp.Errors) != 0 ||
		!slices.Contains(comp.Skip, "components/audit") {
		t.Errorf("the component alone: %d objects, errors %v, skip %v; want none, none, its folder", len(comp.Docs), comp.Errors, comp.Skip)
	}
	sch, err := schema.Default()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := sch.Load(t.Context(), fsys, nil, schema.WithDocs(out.Docs), schema.WithSkip(out.Skip))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var plain int
	for _, o := range objs {
		if o.Via == "" {
			plain++
			if o.File != "plain/cm.yaml" {
				t.Errorf("%s read as a plain manifest", o.File)
			}
		}
	}
	if plain != 1 || len(objs) != len(out.Docs)+1 {
		t.Errorf("%d objects, %d plain: want the %d rendered and plain/cm.yaml", len(objs), plain, len(out.Docs))
	}
}

// TestKustomizeCache checks that an unchanged tree is answered from the
// cache, that a base or a component is never built on its own, and that a
// change to a base rebuilds the overlays that use it.
func TestKustomizeCache(t *testing.T) {
	fsys := mapFS(kustomizeFixture)
	r := New(Limits{})
	first := renderOK(t, r, fsys)
	if first.Units != 4 || first.Rebuilt != 2 {
		t.Fatalf("first render rebuilt %d of %d units, want the 2 overlays of 4", first.Rebuilt, first.Units)
	}
	second := renderOK(t, r, fsys)
	if second.Rebuilt != 0 {
		t.Errorf("unchanged tree: rebuilt %d units, want 0", second.Rebuilt)
	}
	if !slices.EqualFunc(first.Docs, second.Docs, docEqual) {
		t.Error("the cached answer differs from the first")
	}

	fsys["base/settings.properties"] = &fstest.MapFile{Data: []byte("color=green\n")}
	third := renderOK(t, r, fsys)
	if third.Rebuilt != 2 {
		t.Errorf("base changed: rebuilt %d units, want the 2 overlays", third.Rebuilt)
	}
	if all := bytes.Join(docsData(third.Docs), nil); !bytes.Contains(all, []byte("color=green")) || bytes.Contains(all, []byte("color=blue")) {
		t.Error("the overlays do not show the base's change")
	}

	fsys["overlays/staging/replicas.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(kustomizeFixture["overlays/staging/replicas.yaml"], "2", "3", 1))}
	if fourth := renderOK(t, r, fsys); fourth.Rebuilt != 1 {
		t.Errorf("a staging patch changed: rebuilt %d units, want 1", fourth.Rebuilt)
	}
}

func docEqual(a, b schema.Doc) bool {
	return a.File == b.File && a.Line == b.Line && a.Via == b.Via && bytes.Equal(a.Data, b.Data)
}

// TestKustomizeLines checks that each built object points at the line of
// its document in its resource file, and at no line where that is not
// known for sure (a List's items, a generated object).
func TestKustomizeLines(t *testing.T) {
	fsys := mapFS(map[string]string{
		"app/kustomization.yaml": "resources: [two.yaml, list.yaml]\nnamePrefix: x-\nconfigMapGenerator:\n- name: gen\n  literals: [a=b]\n",
		"app/two.yaml":           "# two objects\n" + cmYAML + "---\n\n" + strings.Replace(cmYAML, "name: app", "name: second", 1),
		"app/list.yaml":          "apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(strings.Replace(cmYAML, "name: app", "name: item", 1), "\n", "\n  "),
	})
	out := renderOK(t, New(Limits{}), fsys)
	var got []string
	for _, d := range out.Docs {
		got = append(got, fmt.Sprintf("%s:%d", d.File, d.Line))
	}
	want := []string{"app/two.yaml:2", "app/two.yaml:10", "app/list.yaml:0", "app/kustomization.yaml:0"}
	if !slices.Equal(got, want) {
		t.Errorf("objects at %v, want %v", got, want)
	}
}

// TestKustomizeAtRoot builds a kustomization at the top of the tree, whose
// paths kustomize sees right under the adapter's root.
func TestKustomizeAtRoot(t *testing.T) {
	out := renderOK(t, New(Limits{}), mapFS(map[string]string{
		"kustomization.yaml": "resources: [apps/cm.yaml]\nnamePrefix: top-\n",
		"apps/cm.yaml":       cmYAML,
	}))
	if len(out.Docs) != 1 {
		t.Fatalf("%d objects, want 1", len(out.Docs))
	}
	d := out.Docs[0]
	if d.File != "apps/cm.yaml" || d.Line != 1 || d.Via != "kustomization kustomization.yaml" || !bytes.Contains(d.Data, []byte("name: top-app")) {
		t.Errorf("got %s:%d via %q:\n%s", d.File, d.Line, d.Via, d.Data)
	}
}
