package render

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmengine "helm.sh/helm/v4/pkg/engine"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"sigs.k8s.io/yaml"

	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// helmRepo is a repository with a HelmChart (apps/web.yaml) naming a chart
// of its own (charts/web) with two values files and inline values.
const helmRepo = "testdata/helm"

// helmInline are the inline values of apps/web.yaml, for Helm's side.
const helmInline = "replicas: 3\nenv:\n  LOG_LEVEL: debug\ncache:\n  size: 256Mi\n"

const helmVia = "HelmChart shop/web in apps/web.yaml (chart ../charts/web)"

// helmTemplate renders the test repository's chart as `helm template
// --include-crds -f common.yaml -f prod.yaml -f <inline>` does, with
// Helm's own pieces: its folder loader (and .helmignore), values reader
// and merge, dependency processing, render values, engine and manifest
// sorter. It returns the objects Helm would apply: the CRDs, the manifests
// and the hooks of install.
func helmTemplate(t *testing.T) []map[string]any {
	t.Helper()
	vals := helmValues(t)
	ch, err := loader.Load(filepath.Join(helmRepo, "charts/web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := chartutil.ProcessDependencies(ch, vals); err != nil {
		t.Fatal(err)
	}
	caps := common.DefaultCapabilities.Copy()
	kv, err := common.ParseKubeVersion("v1.37.0")
	if err != nil {
		t.Fatal(err)
	}
	caps.KubeVersion = *kv
	caps.APIVersions = append(caps.APIVersions, "keelson.dev/v1alpha1", "keelson.dev/v1alpha1/NodePolicy")
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: "shop-web", Namespace: "shop", Revision: 1, IsInstall: true}, caps)
	if err != nil {
		t.Fatal(err)
	}
	files, err := helmengine.Render(ch, top)
	if err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		t.Fatal(err)
	}
	var objs []map[string]any
	for _, crd := range ch.CRDObjects() {
		objs = append(objs, helmObjects(t, string(crd.File.Data))...)
	}
	for _, m := range manifests {
		objs = append(objs, helmObjects(t, m.Content)...)
	}
	for _, h := range hooks {
		if slices.Contains(h.Events, releasev1.HookPreInstall) {
			objs = append(objs, helmObjects(t, h.Manifest)...)
		}
	}
	return objs
}

// helmValues merges the test HelmChart's values as `helm template -f
// common.yaml -f prod.yaml -f <inline>` merges them.
func helmValues(t *testing.T) map[string]any {
	t.Helper()
	vals := map[string]any{}
	for _, f := range []string{"apps/values/common.yaml", "apps/values/prod.yaml"} {
		data, err := os.ReadFile(filepath.Join(helmRepo, f))
		if err != nil {
			t.Fatal(err)
		}
		v, err := loader.LoadValues(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		vals = loader.MergeMaps(vals, v)
	}
	inline, err := loader.LoadValues(strings.NewReader(helmInline))
	if err != nil {
		t.Fatal(err)
	}
	return loader.MergeMaps(vals, inline)
}

func helmObjects(t *testing.T, manifest string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, part := range manifestSep.Split(manifest, -1) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(part), &m); err != nil {
			t.Fatalf("helm's output: %v\n%s", err, part)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

func docObjects(t *testing.T, docs []schema.Doc) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range docs {
		var m map[string]any
		if err := json.Unmarshal(d.Data, &m); err != nil {
			t.Fatalf("%s: %v", d.File, err)
		}
		out = append(out, m)
	}
	return out
}

func objKey(m map[string]any) string {
	meta, _ := m["metadata"].(map[string]any)
	return m["kind"].(string) + "/" + meta["name"].(string)
}

func sortObjects(objs []map[string]any) {
	sort.Slice(objs, func(i, j int) bool { return objKey(objs[i]) < objKey(objs[j]) })
}

func meta(m map[string]any) map[string]any { return m["metadata"].(map[string]any) }

func TestHelmChartMatchesHelm(t *testing.T) {
	out := New(Limits{}).Render(t.Context(), os.DirFS(helmRepo), nil)
	if len(out.Errors) > 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	got := docObjects(t, out.Docs)
	want := helmTemplate(t)
	// Where keelson differs from `helm template` on purpose: objects of
	// namespaced kinds get the release's namespace (kubectl and Helm give
	// them the client's), and .Release.Service is keelson.
	for _, m := range want {
		if k := m["kind"]; k != "ClusterRole" && k != "CustomResourceDefinition" {
			if _, ok := meta(m)["namespace"]; !ok {
				meta(m)["namespace"] = "shop"
			}
		}
		if l, ok := meta(m)["labels"].(map[string]any); ok && l["app.kubernetes.io/managed-by"] == "Helm" {
			l["app.kubernetes.io/managed-by"] = "keelson"
		}
	}
	sortObjects(got)
	sortObjects(want)
	gotJSON, _ := json.MarshalIndent(got, "", " ")
	wantJSON, _ := json.MarshalIndent(want, "", " ")
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("keelson rendered:\n%s\nhelm rendered:\n%s", gotJSON, wantJSON)
	}
	var keys []string
	for _, m := range got {
		keys = append(keys, objKey(m))
	}
	wantKeys := []string{"ClusterRole/shop-web-web-reader", "ConfigMap/shop-web-cache", "ConfigMap/shop-web-web-info",
		"ConfigMap/shop-web-web-migrate", "CustomResourceDefinition/widgets.example.com", "Deployment/shop-web-web", "Service/shop-web-web"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("objects %v, want %v (hooks of deletion and tests, NOTES.txt left out)", keys, wantKeys)
	}
}

// TestHelmChartDocs checks what keelson adds to the objects: the template
// each comes from, the HelmChart, the values as merged, the capabilities,
// and what is left out of the plain manifests.
func TestHelmChartDocs(t *testing.T) {
	out := New(Limits{}).Render(t.Context(), os.DirFS(helmRepo), nil)
	if len(out.Errors) > 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	files := map[string]string{}
	for _, d := range out.Docs {
		if d.Via != helmVia {
			t.Errorf("%s: via %q, want %q", d.File, d.Via, helmVia)
		}
		var m map[string]any
		if err := json.Unmarshal(d.Data, &m); err != nil {
			t.Fatal(err)
		}
		files[objKey(m)] = d.File
		if objKey(m) == "ConfigMap/shop-web-web-info" {
			data := m["data"].(map[string]any)
			if data["kubeVersion"] != "v1.37.0" || data["nodePolicies"] != "true" || data["lookup"] != "{}" ||
				data["isInstall"] != "true" || data["files"] != "welcome\n" {
				t.Errorf("rendered with %v, want Kubernetes v1.37.0, keelson's kinds, an empty lookup, an install", data)
			}
		}
		if objKey(m) == "Deployment/shop-web-web" {
			js := string(d.Data)
			for _, s := range []string{`"replicas":3`, `"name":"LOG_LEVEL","value":"debug"`, `"name":"REGION","value":"eu-central"`, `"containerPort":8443`} {
				if !strings.Contains(js, s) {
					t.Errorf("deployment lacks %s (values files merged in order, inline last): %s", s, js)
				}
			}
		}
	}
	wantFiles := map[string]string{
		"Deployment/shop-web-web":                      "charts/web/templates/deployment.yaml",
		"ConfigMap/shop-web-cache":                     "charts/web/charts/cache/templates/cache.yaml",
		"CustomResourceDefinition/widgets.example.com": "charts/web/crds/widget.yaml",
		"ConfigMap/shop-web-web-migrate":               "charts/web/templates/migrate.yaml",
	}
	for k, f := range wantFiles {
		if files[k] != f {
			t.Errorf("%s from %q, want %q", k, files[k], f)
		}
	}
	for _, p := range []string{"apps/values/common.yaml", "apps/values/prod.yaml", "charts/web"} {
		if !slices.Contains(out.Skip, p) {
			t.Errorf("%s is not left out of the plain manifests: skip %v", p, out.Skip)
		}
	}
	if slices.Contains(out.Skip, "apps/web.yaml") {
		t.Error("the HelmChart's own file is left out of the manifests: the HelmChart would not be stored")
	}
}

// TestHelmChartLoads runs the rendering through schema.Load as the sync
// does: every rendered object is valid, and the HelmChart itself and the
// plain manifest beside it are stored.
func TestHelmChartLoads(t *testing.T) {
	s, err := schema.Default()
	if err != nil {
		t.Fatal(err)
	}
	fsys := os.DirFS(helmRepo)
	out := New(Limits{}).Render(t.Context(), fsys, nil)
	objs, err := s.Load(t.Context(), fsys, nil, schema.WithDocs(out.Docs), schema.WithSkip(out.Skip))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Kind+"/"+o.Name)
	}
	sort.Strings(keys)
	for _, k := range []string{"HelmChart/web", "ConfigMap/beside", "Deployment/shop-web-web", "Service/shop-web-web"} {
		if !slices.Contains(keys, k) {
			t.Errorf("%s not loaded; loaded %v", k, keys)
		}
	}
}

// helmArchiveTree packages the test chart with Helm's own packager and
// returns a tree with the archive and a HelmChart naming it.
func helmArchiveTree(t *testing.T) fstest.MapFS {
	t.Helper()
	ch, err := loader.Load(filepath.Join(helmRepo, "charts/web"))
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"vendor/web-0.3.1.tgz": {Data: data}}
	for _, f := range []string{"apps/web.yaml", "apps/values/common.yaml", "apps/values/prod.yaml"} {
		b, err := os.ReadFile(filepath.Join(helmRepo, f))
		if err != nil {
			t.Fatal(err)
		}
		fsys[f] = &fstest.MapFile{Data: b}
	}
	fsys["apps/web.yaml"].Data = []byte(strings.Replace(string(fsys["apps/web.yaml"].Data), "chart: ../charts/web", "chart: ../vendor/web-0.3.1.tgz", 1))
	return fsys
}

func TestHelmChartArchive(t *testing.T) {
	folder := New(Limits{}).Render(t.Context(), os.DirFS(helmRepo), nil)
	out := New(Limits{}).Render(t.Context(), helmArchiveTree(t), nil)
	if len(out.Errors) > 0 || len(folder.Errors) > 0 {
		t.Fatalf("errors: %v %v", out.Errors, folder.Errors)
	}
	got, want := docObjects(t, out.Docs), docObjects(t, folder.Docs)
	sortObjects(got)
	sortObjects(want)
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("the archive rendered:\n%s\nthe folder:\n%s", gotJSON, wantJSON)
	}
	for _, d := range out.Docs {
		if d.File != "vendor/web-0.3.1.tgz" {
			t.Errorf("an object of the archive comes from %s, want the archive", d.File)
		}
	}
}

func TestHelmChartCache(t *testing.T) {
	folder := New(Limits{})
	for i, want := range []int{1, 0} {
		if out := folder.Render(t.Context(), os.DirFS(helmRepo), nil); out.Rebuilt != want || len(out.Errors) > 0 {
			t.Errorf("chart folder, render %d: rebuilt %d, want %d (errors %v)", i+1, out.Rebuilt, want, out.Errors)
		}
	}
	fsys := helmArchiveTree(t)
	r := New(Limits{})
	first := r.Render(t.Context(), fsys, nil)
	if first.Rebuilt != 1 || len(first.Errors) > 0 {
		t.Fatalf("first render: rebuilt %d, errors %v", first.Rebuilt, first.Errors)
	}
	second := r.Render(t.Context(), fsys, nil)
	if second.Rebuilt != 0 || len(second.Docs) != len(first.Docs) {
		t.Errorf("unchanged tree: rebuilt %d, %d docs; want 0 and %d", second.Rebuilt, len(second.Docs), len(first.Docs))
	}
	fsys["README.md"] = &fstest.MapFile{Data: []byte("not an input")}
	if out := r.Render(t.Context(), fsys, nil); out.Rebuilt != 0 {
		t.Errorf("a file the chart does not read rebuilt it")
	}
	fsys["apps/values/prod.yaml"] = &fstest.MapFile{Data: []byte("replicas: 7\n")}
	third := r.Render(t.Context(), fsys, nil)
	if third.Rebuilt != 1 || !strings.Contains(string(docsJSON(third.Docs)), `"replicas":3`) {
		t.Errorf("changed values file: rebuilt %d", third.Rebuilt)
	}
}

func docsJSON(docs []schema.Doc) []byte {
	var b []byte
	for _, d := range docs {
		b = append(b, d.Data...)
	}
	return b
}

// The store's kinds answer .Capabilities.APIVersions.
func TestHelmCapabilities(t *testing.T) {
	caps, err := capabilities()
	if err != nil {
		t.Fatal(err)
	}
	if caps.KubeVersion.Version != "v1.37.0" || caps.KubeVersion.Minor != "37" {
		t.Errorf("KubeVersion %+v", caps.KubeVersion)
	}
	for _, r := range store.Resources() {
		gv := r.GVK.GroupVersion().String()
		if !caps.APIVersions.Has(gv) || !caps.APIVersions.Has(gv+"/"+r.GVK.Kind) {
			t.Errorf("%s not in APIVersions", r.GVK)
		}
	}
	if caps.APIVersions.Has("extensions/v1beta1") {
		t.Error("a version keelson does not serve is in APIVersions")
	}
}
