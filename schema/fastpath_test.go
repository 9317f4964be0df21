package schema

import (
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
)

// slowSchema is a Schema that always unifies whole documents.
func slowSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	s.noFast = true
	return s
}

// agree validates src with and without the fast path and fails when the
// verdicts or the objects differ.
func agree(t *testing.T, fast, slow *Schema, name string, src []byte) {
	t.Helper()
	fo, fe := fast.validateFile(name, src, DefaultMaxFileSize)
	so, se := slow.validateFile(name, src, DefaultMaxFileSize)
	if len(fe) != len(se) || len(fo) != len(so) {
		t.Errorf("%s: fast path: %d objects, %d errors; unification: %d objects, %d errors\nfast: %v\nslow: %v", name, len(fo), len(fe), len(so), len(se), fe, se)
		return
	}
	for i := range fo {
		if !reflect.DeepEqual(fo[i], so[i]) {
			t.Errorf("%s: object %d differs:\nfast %+v\nslow %+v", name, i, *fo[i], *so[i])
		}
	}
}

func TestFastPathAgreesWithUnify(t *testing.T) {
	fast, slow := testSchema(t), slowSchema(t)
	for _, c := range append(kindCases, storedKindCases...) {
		agree(t, fast, slow, c.kind+"-valid.yaml", []byte(c.valid))
		agree(t, fast, slow, c.kind+"-invalid.yaml", []byte(c.invalid))
	}
	agree(t, fast, slow, "bench.yaml", fmt.Appendf(nil, benchDeployment+benchRest, 1, 1))
	dir := corpusDir()
	if _, err := os.Stat(dir); err != nil {
		t.Logf("corpus not found at %s: checked the kind cases only", dir)
		return
	}
	fsys := os.DirFS(dir)
	files, _ := listFiles(fsys, ".", nil)
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			t.Fatal(err)
		}
		agree(t, fast, slow, f, data)
	}
}

func TestFastPathTakesValidDocuments(t *testing.T) {
	s, err := testSchema(t).get()
	if err != nil {
		t.Fatal(err)
	}
	defer testSchema(t).put(s)
	for _, c := range append(kindCases, storedKindCases...) {
		docs, errs := parseFile("k.yaml", []byte(c.valid), DefaultMaxFileSize)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if _, ok := s.fastDoc("k.yaml", docs[0]); !ok {
			t.Errorf("%s: valid manifest not taken by the fast path", c.kind)
		}
		docs, _ = parseFile("k.yaml", []byte(c.invalid), DefaultMaxFileSize)
		if _, ok := s.fastDoc("k.yaml", docs[0]); ok {
			t.Errorf("%s: invalid manifest accepted by the fast path", c.kind)
		}
	}
}

// TestFastPathRejectsNestedMistakes covers the places where the fast path
// falls back to unifying a subtree (CUE hands out no usable definition below
// some list elements) and the field-by-field places.
func TestFastPathRejectsNestedMistakes(t *testing.T) {
	fast, slow := testSchema(t), slowSchema(t)
	base := fmt.Sprintf(benchDeployment, 1, 1)
	for name, edit := range map[string][2]string{
		"unknown field in secretKeyRef": {"key: password}", "key: password, bogus: 1}"},
		"wrong type in secretKeyRef":    {"key: password}", "key: 5}"},
		"unknown field in volume":       {"configMap: {name: web-1}", "configMap: {name: web-1}\n        bogus: 1"},
		"bad volume name":               {"- name: config\n", "- name: Config_1\n"},
		"bad defaultMode":               {"configMap: {name: web-1}", "configMap: {name: web-1, defaultMode: x}"},
		"unknown field in container":    {"args:", "argz:"},
		"bad env name type":             {"{name: MODE, value: production}", "{name: 5, value: production}"},
		"bad port name":                 {"name: http, containerPort", "name: HTTP_x, containerPort"},
		"bad quantity":                  {"cpu: 100m", "cpu: 100x"},
		"empty containers":              {"containers:\n      - name: web", "containers: []\n      initContainers:\n      - name: web"},
	} {
		src := strings.Replace(base, edit[0], edit[1], 1)
		if src == base {
			t.Fatalf("%s: edit did not apply", name)
		}
		if objs, _ := fast.validateFile("x.yaml", []byte(src), DefaultMaxFileSize); len(objs) != 0 {
			t.Errorf("%s: accepted", name)
		}
		agree(t, fast, slow, name+".yaml", []byte(src))
	}
}
