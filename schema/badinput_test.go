package schema

import (
	"strings"
	"testing"
)

// TestBadInput: each kind of broken file gives one clear error with its
// location, without panicking or running away.
func TestBadInput(t *testing.T) {
	bomb := "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
	for i, prev := 0, "a"; i < 9; i++ {
		name := string(rune('b' + i))
		bomb += name + ": &" + name + " [" + strings.Repeat("*"+prev+",", 9) + "*" + prev + "]\n"
		prev = name
	}
	tests := []struct {
		name, file, src string
		want            string
	}{
		{"yaml bomb", "bomb.yaml", bomb, "bomb.yaml:"},
		{"deep nesting", "deep.yaml", strings.Repeat("[", 5000) + strings.Repeat("]", 5000), "deep.yaml:1:"},
		{"deep nesting json", "deep.json", strings.Repeat(`{"a":`, 3000) + "1" + strings.Repeat("}", 3000), "nests deeper than 100 levels"},
		{"not utf-8", "bin.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xff}\n", "bin.yaml:3:18: file is not valid UTF-8"},
		{"duplicate keys", "dup.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nkind: Secret\n", `dup.yaml:4:1: duplicate key "kind" (first at line 2)`},
		{"tabs", "tab.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: a\n", "tab.yaml:4:"},
		{"empty file", "empty.yaml", "", "empty.yaml: file is empty: it holds no object"},
		{"only comments", "c.yaml", "# nothing here\n", "c.yaml:1:"},
		{"stray separator", "sep.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n", "sep.yaml:"},
		{"not an object", "s.yaml", "just a string\n", `s.yaml:1:1: must be an object with apiVersion and kind, got "just a string"`},
		{"no kind", "nk.yaml", "metadata: {name: a}\n", "nk.yaml:1:1: apiVersion and kind are required"},
		{"cue error", "bad.cue", "a: 1\na: 2\n", "bad.cue:"},
		{"cue syntax", "bad.cue", "a: {\n", "bad.cue:"},
		{"json syntax", "bad.json", `{"a": }`, "bad.json:1:"},
		{"unknown extension", "x.txt", "a: 1", "x.txt: not a manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := validate(t, tt.file, tt.src)
			if len(objs) != 0 {
				t.Errorf("objects accepted: %v", objs)
			}
			if len(errs) == 0 {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(errs[0], tt.want) && !strings.Contains(errs[0], tt.want) {
				t.Errorf("first error %q, want it to contain %q (all: %q)", errs[0], tt.want, errs)
			}
		})
	}
}

func TestFileSizeLimit(t *testing.T) {
	s := testSchema(t)
	src := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: " + strings.Repeat("x", 100) + "}\n")
	_, errs := s.validateFile("big.yaml", src, 64)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "big.yaml: file is 163 bytes, over the limit of 64 bytes") {
		t.Errorf("got %v", errs)
	}
	if _, errs := s.validateFile("big.yaml", src, DefaultMaxFileSize); len(errs) != 0 {
		t.Errorf("under the limit: %v", errs)
	}
}
