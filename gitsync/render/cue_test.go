package render

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/schema"
)

// cueTree makes an in-memory tree of files.
func cueTree(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}

const cueModFile = `module: "example.com/shop"
language: version: "v0.17.0"
`

// cueShop is a package of two files: a definition shared by a Deployment
// and its Service, and the app that uses it.
var cueShop = map[string]string{
	"apps/shop/app.cue": `package shop

// #App is an HTTP server and the Service in front of it.
#App: {
	#name: string
	#port: int | *8080
	let labels = {"app.kubernetes.io/name": #name}

	deployment: {
		apiVersion: "apps/v1"
		kind:       "Deployment"
		metadata: {name: #name, namespace: "shop"}
		spec: {
			selector: matchLabels: labels
			template: {
				metadata: "labels": labels
				spec: containers: [{name: "httpd", image: "localhost/busybox:latest", ports: [{containerPort: #port}]}]
			}
		}
	}
	service: {
		apiVersion: "v1"
		kind:       "Service"
		metadata: {name: #name, namespace: "shop"}
		spec: {
			selector: labels
			ports: [{port: 80, targetPort: #port}]
		}
	}
}
`,
	"apps/shop/web.cue": `package shop

web: #App & {#name: "web"}
`,
}

// TestCUESharedDefinition renders a Deployment and its Service written with
// one definition in two files of one package, and checks that they are
// valid keelson objects pointing at the .cue file.
func TestCUESharedDefinition(t *testing.T) {
	fsys := cueTree(cueShop)
	out := New(Limits{}).Render(t.Context(), fsys, nil)
	if len(out.Errors) > 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	if len(out.Docs) != 2 {
		t.Fatalf("got %d docs, want 2: %+v", len(out.Docs), out.Docs)
	}
	for i, want := range []struct{ kind string }{{"Deployment"}, {"Service"}} {
		d := out.Docs[i]
		var obj struct{ Kind string }
		if err := json.Unmarshal(d.Data, &obj); err != nil {
			t.Fatalf("doc %d is not JSON: %v", i, err)
		}
		if obj.Kind != want.kind || d.Via != "CUE package apps/shop" || d.File != "apps/shop/app.cue" || d.Line == 0 {
			t.Errorf("doc %d: %s from %s:%d via %q, want a %s from apps/shop/app.cue via CUE package apps/shop",
				i, obj.Kind, d.File, d.Line, d.Via, want.kind)
		}
	}
	if !strings.Contains(strings.Join(out.Skip, " "), "apps/shop/web.cue") {
		t.Errorf("skip %v does not leave out the package's files", out.Skip)
	}

	sch, err := schema.Default()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := sch.Load(t.Context(), fsys, nil, schema.WithDocs(out.Docs), schema.WithSkip(out.Skip))
	if err != nil {
		t.Fatalf("schema refuses the rendered objects: %v", err)
	}
	if len(objs) != 2 {
		t.Fatalf("schema loaded %d objects, want 2", len(objs))
	}
	dep, ok := objs[0].Object.(*appsv1.Deployment)
	if !ok || dep.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 8080 {
		t.Errorf("first object %T %+v: want the Deployment with the definition's default port 8080", objs[0].Object, objs[0].Object)
	}
	svc, ok := objs[1].Object.(*corev1.Service)
	if !ok || svc.Spec.Selector["app.kubernetes.io/name"] != "web" || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 {
		t.Errorf("second object %T %+v: want the Service selecting web on 8080", objs[1].Object, objs[1].Object)
	}
	if objs[0].Via != "CUE package apps/shop" || objs[0].File != "apps/shop/app.cue" {
		t.Errorf("object from %s via %q", objs[0].File, objs[0].Via)
	}
}

// TestCUEObjectsFound checks which values of a package are objects: fields at
// any depth and list elements, in the order they are written, but not
// hidden fields, definitions, optional fields, or objects inside objects.
func TestCUEObjectsFound(t *testing.T) {
	fsys := cueTree(map[string]string{
		"a/b.cue": `package a

second: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "b1"}
`,
		"a/a.cue": `package a

_hidden: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "hidden"}
#Def: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "def"}
opt?: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "optional"}
first: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "a1", data: inner: {apiVersion: "v1", kind: "Secret"}.kind}
list: [
	{apiVersion: "v1", kind: "ConfigMap", metadata: name: "a2"},
	{apiVersion: "v1", kind: "ConfigMap", metadata: name: "a3"},
]
nested: deeper: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "a4"}
notObject: {kind: "NoAPIVersion"}
count: 3
`,
	})
	out := New(Limits{}).Render(t.Context(), fsys, nil)
	if len(out.Errors) > 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	var got []string
	for _, d := range out.Docs {
		var obj struct {
			Metadata struct{ Name string }
		}
		if err := json.Unmarshal(d.Data, &obj); err != nil {
			t.Fatal(err)
		}
		got = append(got, obj.Metadata.Name+"@"+d.File)
	}
	want := "a1@a/a.cue a2@a/a.cue a3@a/a.cue a4@a/a.cue b1@a/b.cue"
	if strings.Join(got, " ") != want {
		t.Errorf("objects %v, want %s", got, want)
	}
	if out.Docs[1].Line != 8 || out.Docs[0].Line != 6 {
		t.Errorf("lines %d and %d, want 6 and 8 (where each struct is written)", out.Docs[0].Line, out.Docs[1].Line)
	}
}

// TestCUEModule imports a package of the repository's module, a generated
// package under cue.mod/gen and one under cue.mod/pkg, from a folder two
// levels below the module.
func TestCUEModule(t *testing.T) {
	fsys := cueTree(map[string]string{
		"deploy/cue.mod/module.cue": cueModFile,
		"deploy/cue.mod/gen/k8s.io/api/core/v1/types.cue": `package v1

#ConfigMap: {apiVersion: "v1", kind: "ConfigMap", metadata: name: string, data?: [string]: string}
`,
		"deploy/cue.mod/pkg/example.org/defaults/d.cue": `package defaults

owner: "team-a"
`,
		"deploy/lib/names.cue": `package lib

prefix: "shop-"
`,
		"deploy/apps/web/web.cue": `package web

import (
	corev1 "k8s.io/api/core/v1"
	"example.com/shop/lib"
	"example.org/defaults"
)

page: corev1.#ConfigMap & {metadata: name: lib.prefix + "page", data: owner: defaults.owner}
`,
	})
	out := New(Limits{}).Render(t.Context(), fsys, []string{"deploy/apps"})
	if len(out.Errors) > 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	if len(out.Docs) != 1 {
		t.Fatalf("got %d docs, want 1", len(out.Docs))
	}
	want := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"shop-page"},"data":{"owner":"team-a"}}`
	if got := string(out.Docs[0].Data); got != want {
		t.Errorf("object %s, want %s", got, want)
	}
	for _, p := range []string{"deploy/lib/names.cue", "deploy/cue.mod/module.cue", "deploy/cue.mod/gen/k8s.io/api/core/v1/types.cue"} {
		if !strings.Contains(strings.Join(out.Skip, " "), p) {
			t.Errorf("skip %v does not hold %s, which the package read", out.Skip, p)
		}
	}
}

// TestCUESeveralPackages evaluates each package of a folder on its own.
func TestCUESeveralPackages(t *testing.T) {
	fsys := cueTree(map[string]string{
		"m/a.cue": "package a\n\nx: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"a\"}\n",
		"m/b.cue": "package b\n\nx: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"b\"}\n",
	})
	out := New(Limits{}).Render(t.Context(), fsys, nil)
	if len(out.Errors) > 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	var via []string
	for _, d := range out.Docs {
		via = append(via, d.Via)
	}
	if strings.Join(via, ",") != "CUE package m:a,CUE package m:b" {
		t.Errorf("rendered via %v, want one object of each package", via)
	}
}

// TestCUEStopped gives up an evaluation at the unit's deadline, with a clear
// error, and waits for it to end so that no goroutine is left.
func TestCUEStopped(t *testing.T) {
	fsys := cueTree(map[string]string{
		"slow/s.cue": "import \"list\"\n\nx: list.Sum([for i in list.Range(0, 100, 1) for j in list.Range(0, 100, 1) {i * j}])\n",
	})
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		cueRunning.Wait()
		if err := goleak.Find(before); err != nil {
			t.Error(err)
		}
	})
	// The sum takes far longer than the limit: the evaluation is given up.
	out := New(Limits{Timeout: 20 * time.Millisecond}).Render(t.Context(), fsys, nil)
	if len(out.Errors) != 1 || len(out.Docs) != 0 {
		t.Fatalf("got %d docs and errors %v, want one error", len(out.Docs), out.Errors)
	}
	if e := out.Errors[0]; e.File != "slow" || !strings.Contains(e.Msg, "did not end within") {
		t.Errorf("error %v, want the folder and the limit", e)
	}
}

// TestCUEErrors checks that bad packages render nothing and say what is wrong
// at CUE's file:line:column.
func TestCUEErrors(t *testing.T) {
	cm := `{apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}`
	tests := []struct {
		name  string
		files map[string]string
		lim   Limits
		at    string // file:line:col of the first error
		msg   string // in the first error
	}{
		{name: "incomplete", files: map[string]string{
			"p/a.cue": "package p\n\nobj: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: string}\n"},
			at: "p/a.cue:3:60", msg: "obj.metadata.name: incomplete value string"},
		{name: "conflict across files", files: map[string]string{
			"p/a.cue": "package p\n\nobj: " + cm + "\n",
			"p/b.cue": "package p\n\nobj: metadata: name: \"y\"\n"},
			at: "p/a.cue:3:60", msg: "obj.metadata.name: conflicting values \"y\" and \"x\" (see also p/b.cue:3:22)"},
		{name: "reference cycle", files: map[string]string{
			"p/a.cue": "package p\n\na: b\nb: a\n"},
			at: "p/a.cue:3:4", msg: "a: incomplete value _"},
		{name: "structural cycle", files: map[string]string{
			"p/a.cue": "package p\n\nx: {next: x}\n"},
			at: "p/a.cue:3:5", msg: "x.next: structural cycle"},
		{name: "syntax", files: map[string]string{
			"p/a.cue": "package p\n\nobj: {\n"},
			at: "p/a.cue:3:8", msg: "expected '}', found 'EOF'"},
		{name: "import outside the module", files: map[string]string{
			"cue.mod/module.cue": cueModFile,
			"p/a.cue":            "package p\n\nimport \"example.org/elsewhere\"\n\nobj: elsewhere.obj\n"},
			at: "p/a.cue:3:8", msg: `cannot find package "example.org/elsewhere"`},
		{name: "import without a module", files: map[string]string{
			"p/a.cue": "package p\n\nimport \"example.com/shop/lib\"\n\nobj: lib.obj\n"},
			at: "p/a.cue:3:8", msg: "no cue.mod/module.cue"},
		{name: "module dependency", files: map[string]string{
			"cue.mod/module.cue": cueModFile + "deps: \"example.org/dep@v0\": v: \"v0.1.0\"\n",
			"p/a.cue":            "package p\n\nimport \"example.org/dep\"\n\nobj: dep.obj\n"},
			at: "p/a.cue:3:8", msg: "keelson fetches no modules from a registry"},
		{name: "bad module file", files: map[string]string{
			"cue.mod/module.cue": "module: 3\n",
			"p/a.cue":            "package p\n\nobj: " + cm + "\n"},
			at: "cue.mod/module.cue", msg: "no language version declared in module.cue"},
		{name: "output limit", lim: Limits{MaxOutputBytes: 100}, files: map[string]string{
			"p/a.cue": "package p\n\nobjs: [" + cm + ", " + cm + "]\n"},
			at: "p", msg: "more than 100 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := New(tt.lim).Render(t.Context(), cueTree(tt.files), nil)
			if len(out.Docs) != 0 {
				t.Errorf("rendered %d docs from a bad package", len(out.Docs))
			}
			if len(out.Errors) == 0 {
				t.Fatal("no error")
			}
			e := out.Errors[0]
			at := e.File
			if e.Line > 0 {
				at = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
			}
			if at != tt.at || !strings.Contains(e.Error(), tt.msg) {
				t.Errorf("error at %s: %v\nwant at %s, saying %q", at, out.Errors, tt.at, tt.msg)
			}
		})
	}
}

// TestCUECache renders a tree again: nothing is rebuilt while the package's
// inputs stay the same, and a change to a file of an imported package
// rebuilds the package that imports it.
func TestCUECache(t *testing.T) {
	fsys := cueTree(map[string]string{
		"cue.mod/module.cue":           cueModFile,
		"cue.mod/gen/unused/u.cue":     "package unused\n\nx: 1\n",
		"lib/names.cue":                "package lib\n\nprefix: \"shop-\"\n",
		"apps/web/web.cue":             "package web\n\nimport \"example.com/shop/lib\"\n\npage: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: lib.prefix + \"page\"}\n",
		"apps/plain/configmap.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n",
		"other/notes/readme-data.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n",
	})
	r := New(Limits{})
	name := func(out *Output) string {
		t.Helper()
		if len(out.Errors) > 0 || len(out.Docs) != 1 {
			t.Fatalf("got %d docs, errors %v", len(out.Docs), out.Errors)
		}
		var obj struct{ Metadata struct{ Name string } }
		if err := json.Unmarshal(out.Docs[0].Data, &obj); err != nil {
			t.Fatal(err)
		}
		return obj.Metadata.Name
	}
	steps := []struct {
		name    string
		change  func()
		rebuilt int
		object  string
	}{
		{name: "first", change: func() {}, rebuilt: 2, object: "shop-page"},
		{name: "unchanged", change: func() {}, rebuilt: 0, object: "shop-page"},
		{name: "a file no package reads", change: func() {
			fsys["other/notes/readme-data.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes2}\n")}
			fsys["cue.mod/gen/unused/u.cue"] = &fstest.MapFile{Data: []byte("package unused\n\nx: 2\n")}
		}, rebuilt: 0, object: "shop-page"},
		{name: "the imported package", change: func() {
			fsys["lib/names.cue"] = &fstest.MapFile{Data: []byte("package lib\n\nprefix: \"store-\"\n")}
		}, rebuilt: 2, object: "store-page"}, // lib is a unit of its own too
		{name: "a new file of the package", change: func() {
			fsys["apps/web/more.cue"] = &fstest.MapFile{Data: []byte("package web\n\npage: data: k: \"v\"\n")}
		}, rebuilt: 1, object: "store-page"},
	}
	for _, s := range steps {
		s.change()
		out := r.Render(t.Context(), fsys, nil)
		if got := name(out); out.Rebuilt != s.rebuilt || got != s.object {
			t.Errorf("%s: rebuilt %d of %d units, object %s; want %d rebuilt, object %s",
				s.name, out.Rebuilt, out.Units, got, s.rebuilt, s.object)
		}
	}
}

// TestCUESymlinks follows a .cue symlink inside the repository and refuses
// one that points out of it, naming the link.
func TestCUESymlinks(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"outside.cue":          "package p\n\nsecret: {apiVersion: \"v1\", kind: \"Secret\", metadata: name: \"s\"}\n",
		"repo/shared/cm.cue":   "package p\n\ncm: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"cm\"}\n",
		"repo/inside/keep.cue": "package p\n",
		"repo/out/keep.cue":    "package p\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"repo/inside/cm.cue": "../shared/cm.cue", "repo/out/secret.cue": "../../outside.cue"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	fsys := os.DirFS(filepath.Join(dir, "repo"))
	r := New(Limits{})

	in := r.Render(t.Context(), fsys, []string{"inside"})
	if len(in.Errors) > 0 || len(in.Docs) != 1 || in.Docs[0].File != "inside/cm.cue" {
		t.Errorf("a link inside the repository: docs %+v, errors %v; want the ConfigMap from inside/cm.cue", in.Docs, in.Errors)
	}
	out := r.Render(t.Context(), fsys, []string{"out"})
	if len(out.Docs) != 0 || len(out.Errors) != 1 || out.Errors[0].File != "out/secret.cue" ||
		!strings.Contains(out.Errors[0].Msg, "outside the repository") {
		t.Errorf("a link out of the repository: docs %d, errors %v; want one error naming out/secret.cue", len(out.Docs), out.Errors)
	}
}

// FuzzCUE evaluates arbitrary CUE in a module: Render returns, with objects
// or with problems naming a file, and never panics.
func FuzzCUE(f *testing.F) {
	for _, seed := range []string{
		cueShop["apps/shop/app.cue"], "a: b\nb: a\n", "x: {next: x}\n", "obj: {\n",
		"package p\n\nimport \"example.com/shop/lib\"\n\nobj: lib.cm\n",
		"import \"list\"\n\nx: list.Repeat([{apiVersion: \"v1\", kind: \"ConfigMap\"}], 3)\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		fsys := cueTree(map[string]string{
			"cue.mod/module.cue": cueModFile,
			"lib/lib.cue":        "package lib\n\ncm: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"c\"}\n",
			"p/a.cue":            src,
		})
		out := New(Limits{Timeout: 2 * time.Second, MaxOutputBytes: 1 << 20}).Render(t.Context(), fsys, []string{"p"})
		for _, e := range out.Errors {
			if e.File == "" || strings.HasPrefix(e.File, "/") {
				t.Errorf("a problem names no file of the tree: %s", e)
			}
		}
		for _, d := range out.Docs {
			if !json.Valid(d.Data) || d.File == "" {
				t.Errorf("doc from %q is not one JSON object: %s", d.File, d.Data)
			}
		}
	})
}

// TestCUESlotsBusy checks that evaluations still running past their time
// hold back new ones: a unit waits for a slot until its own deadline.
func TestCUESlotsBusy(t *testing.T) {
	for range cap(cueSlots) {
		cueSlots <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(cueSlots) {
			<-cueSlots
		}
	})
	fsys := cueTree(map[string]string{"p/a.cue": "package p\n\nobj: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"x\"}\n"})
	r := New(Limits{Timeout: 20 * time.Millisecond})
	out := r.Render(t.Context(), fsys, nil)
	if len(out.Docs) != 0 || len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Msg, "waiting for earlier CUE evaluations") {
		t.Errorf("docs %d, errors %v; want one error saying the unit waited for a slot", len(out.Docs), out.Errors)
	}
	for range cap(cueSlots) {
		<-cueSlots
	}
	// The wait is not remembered: once the evaluator is free, the same tree
	// renders.
	out = r.Render(t.Context(), fsys, nil)
	for range cap(cueSlots) {
		cueSlots <- struct{}{} // for the cleanup to take back
	}
	if len(out.Docs) != 1 || len(out.Errors) != 0 || out.Rebuilt != 1 {
		t.Errorf("after the wait: %d docs, %d rebuilt, errors %v; want the object rendered anew", len(out.Docs), out.Rebuilt, out.Errors)
	}
}
