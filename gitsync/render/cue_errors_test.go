package render

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

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

// TestCUERootOnDisk refuses to evaluate when the folder the loader sees the
// tree under exists on the machine: its files would join the package.
func TestCUERootOnDisk(t *testing.T) {
	old := cueRoot
	cueRoot = filepath.Join(t.TempDir(), "root")
	t.Cleanup(func() { cueRoot = old })
	fsys := cueTree(map[string]string{"p/a.cue": "package p\n\nobj: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"x\"}\n"})
	r := New(Limits{})
	if out := r.Render(t.Context(), fsys, nil); len(out.Errors) != 0 || len(out.Docs) != 1 {
		t.Fatalf("docs %d, errors %v; want the object", len(out.Docs), out.Errors)
	}
	planted := filepath.Join(cueRoot, "p", "b.cue")
	if err := os.MkdirAll(filepath.Dir(planted), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planted, []byte("package p\n\nextra: {apiVersion: \"v1\", kind: \"Secret\", metadata: name: \"planted\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys["p/a.cue"].Data = append(fsys["p/a.cue"].Data, '\n') // a change, so the unit is evaluated again
	out := New(Limits{}).Render(t.Context(), fsys, nil)
	if len(out.Docs) != 0 || len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Msg, "must not exist on this machine") {
		t.Errorf("docs %d, errors %v; want one error naming the folder on disk", len(out.Docs), out.Errors)
	}
}

// TestCUEDisjunction reports each alternative of a failed disjunction, at
// its place, without CUE's heading line.
func TestCUEDisjunction(t *testing.T) {
	fsys := cueTree(map[string]string{
		"def.cue": "package p\n\n#App: replicas: int & >=1 | *2\n",
		"app.cue": "package p\n\ncart: #App & {replicas: 0}\n",
	})
	out := New(Limits{}).Render(t.Context(), fsys, nil)
	var got []string
	for _, e := range out.Errors {
		got = append(got, fmt.Sprintf("%s:%d %s %s", e.File, e.Line, e.Via, e.Msg))
	}
	want := []string{
		"app.cue:3 CUE package (top folder) conflicting values 2 and 0 (see also app.cue:3:25, def.cue:3:30)",
		"def.cue:3 CUE package (top folder) invalid value 0 (out of bound >=1) (see also app.cue:3:25)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
