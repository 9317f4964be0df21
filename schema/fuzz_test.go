package schema

import (
	"strings"
	"testing"
)

// FuzzValidateFile feeds arbitrary bytes to the loader as YAML, JSON and CUE.
// Whatever the input, it must not panic, every problem must name its file and
// carry a message, and the fast path must agree with whole-document
// unification. The seeds run as a normal test; fuzz by hand with
// go test -run '^$' -fuzz FuzzValidateFile ./schema
func FuzzValidateFile(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]}\n",
		"apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Secret, metadata: {name: s}, data: {k: dg==}}]\n",
		`{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}`,
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		"---\n---\n",
		"\t- x",
		"[[[[[[[[[[",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nkind: Pod\n",
		"\xff\xfe",
		"",
	} {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(1))
		f.Add(seed, uint8(2))
	}
	s, slow := testSchema(f), slowSchema(f)
	exts := []string{"f.yaml", "f.json", "f.cue"}
	f.Fuzz(func(t *testing.T, src string, ext uint8) {
		name := exts[int(ext)%len(exts)]
		objs, errs := s.validateFile(name, []byte(src), 64<<10)
		if sobjs, serrs := slow.validateFile(name, []byte(src), 64<<10); len(sobjs) != len(objs) || len(serrs) != len(errs) {
			t.Errorf("fast path: %d objects, %v; unification: %d objects, %v", len(objs), errs, len(sobjs), serrs)
		}
		for _, e := range errs {
			if e.File != name || e.Msg == "" {
				t.Errorf("error without file or message: %+v", *e)
			}
		}
		for _, o := range objs {
			if o.Object == nil || o.Kind == "" || !strings.Contains(name, ".") {
				t.Errorf("object without kind or value: %+v", *o)
			}
		}
	})
}
