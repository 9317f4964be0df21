package render

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"

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

// TestCUEKeelsonKinds writes objects with keelson's own definitions,
// imported as keelson.dev/schema/kinds: a valid one renders, a bad one is
// refused while CUE evaluates it, at the line of the package that wrote
// it; a repository that keeps a package of that path uses its own.
func TestCUEKeelsonKinds(t *testing.T) {
	const head = "package app\n\nimport k8s \"keelson.dev/schema/kinds\"\n\n"
	tests := []struct {
		name  string
		files map[string]string
		data  string // the object rendered, or
		err   string // the first error
	}{
		{name: "valid", files: map[string]string{
			"app/a.cue": head + "cm: k8s.#ConfigMap & {metadata: {name: \"x\", namespace: \"default\"}, data: a: \"b\"}\n"},
			data: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"default"},"data":{"a":"b"}}`},
		{name: "port out of range", files: map[string]string{
			"app/a.cue": head + "svc: k8s.#Service & {metadata: name: \"s\", spec: {selector: app: \"a\", ports: [{port: 99999}]}}\n"},
			err: "app/a.cue:5:85: rendered by CUE package app: svc.spec.ports.0.port: must be a port number from 1 to 65535"},
		{name: "the repository's own", files: map[string]string{
			"cue.mod/pkg/keelson.dev/schema/kinds/k.cue": "package kinds\n\n#ConfigMap: {apiVersion: \"v1\", kind: \"ConfigMap\", data: mine: \"yes\", ...}\n",
			"app/a.cue": head + "cm: k8s.#ConfigMap & {metadata: name: \"x\"}\n"},
			data: `{"apiVersion":"v1","kind":"ConfigMap","data":{"mine":"yes"},"metadata":{"name":"x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files["cue.mod/module.cue"] = cueModFile
			out := New(Limits{}).Render(t.Context(), cueTree(tt.files), nil)
			switch {
			case tt.err != "":
				if len(out.Errors) == 0 || !strings.HasPrefix(out.Errors[0].Error(), tt.err) {
					t.Errorf("errors %v, want first %q", out.Errors, tt.err)
				}
			case len(out.Errors) > 0 || len(out.Docs) != 1:
				t.Errorf("docs %d, errors %v; want one object", len(out.Docs), out.Errors)
			case string(out.Docs[0].Data) != tt.data || out.Docs[0].File != "app/a.cue" || out.Docs[0].Line != 5:
				t.Errorf("object %s at %s:%d, want %s at app/a.cue:5", out.Docs[0].Data, out.Docs[0].File, out.Docs[0].Line, tt.data)
			}
		})
	}
}
