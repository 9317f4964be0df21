package gitsync

import (
	"bytes"
	"testing"
)

func TestFieldPosition(t *testing.T) {
	twoDocs := "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  clusterIP: 10.43.0.20\n---\n# b\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec:\n  ports:\n  - port: 80\n  - {port: 81, nodePort: 30081}\n"
	anchors := "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nx: &ports\n  - {port: 80, nodePort: 30080}\nspec:\n  ports: *ports\n"
	json := "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Service\",\n  \"spec\": {\n    \"clusterIP\": \"10.43.0.9\"\n  }\n}\n"
	cases := []struct {
		name      string
		data      string
		line, doc int
		path      string
		wantLine  int
		wantCol   int
		found     bool
	}{
		{"first document", twoDocs, 1, 1, "spec.clusterIP", 5, 14, true},
		{"second document by its line", twoDocs, 8, 0, "spec.ports[1].nodePort", 14, 26, true},
		{"second document by its index", twoDocs, 99, 2, "spec.ports[1].nodePort", 14, 26, true},
		{"a field that is absent", twoDocs, 8, 2, "spec.clusterIP", 0, 0, false},
		{"an index past the end", twoDocs, 8, 2, "spec.ports[5].nodePort", 0, 0, false},
		{"through an alias", anchors, 1, 1, "spec.ports[0].nodePort", 5, 26, true},
		{"JSON", json, 1, 1, "spec.clusterIP", 5, 18, true},
		{"a path that is not one", twoDocs, 1, 1, "spec..x[", 0, 0, false},
		{"not YAML", "{{{", 1, 1, "spec", 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line, col, ok := fieldPosition([]byte(tc.data), tc.line, tc.doc, tc.path)
			if line != tc.wantLine || col != tc.wantCol || ok != tc.found {
				t.Errorf("got %d:%d %t, want %d:%d %t", line, col, ok, tc.wantLine, tc.wantCol, tc.found)
			}
		})
	}
}

func TestParseFieldPath(t *testing.T) {
	cases := []struct {
		path string
		want []pathStep
		ok   bool
	}{
		{"spec.clusterIP", []pathStep{{key: "spec"}, {key: "clusterIP"}}, true},
		{"spec.ports[2].nodePort", []pathStep{{key: "spec"}, {key: "ports"}, {index: 2}, {key: "nodePort"}}, true},
		{"a[0][1]", []pathStep{{key: "a"}, {index: 0}, {index: 1}}, true},
		{"", nil, false},
		{"a..b", nil, false},
		{"a[x]", nil, false},
		{"a[-1]", nil, false},
		{"a[1", nil, false},
		{"a[1]b", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			got, ok := parseFieldPath(tc.path)
			if ok != tc.ok || (ok && !equalSteps(got, tc.want)) {
				t.Errorf("parseFieldPath(%q) = %v, %t; want %v, %t", tc.path, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func equalSteps(a, b []pathStep) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzFieldPosition: any manifest and path give a position inside the
// manifest or none, and never a crash.
func FuzzFieldPosition(f *testing.F) {
	f.Add([]byte("spec:\n  ports:\n  - {nodePort: 30080}\n"), 1, 1, "spec.ports[0].nodePort")
	f.Add([]byte("a: &x [1, *x]\nspec: *x\n"), 1, 1, "spec[1][1][0]")
	f.Add([]byte("---\n---\nspec: {clusterIP: x}\n"), 3, 2, "spec.clusterIP")
	f.Add([]byte(`{"spec": {"clusterIP": "10.43.0.1"}}`), 1, 1, "spec.clusterIP")
	f.Fuzz(func(t *testing.T, data []byte, line, doc int, path string) {
		l, c, ok := fieldPosition(data, line, doc, path)
		if !ok {
			return
		}
		if l < 1 || c < 1 || l > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("position %d:%d outside %d lines", l, c, bytes.Count(data, []byte("\n"))+1)
		}
	})
}
