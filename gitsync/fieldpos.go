package gitsync

import (
	"bytes"
	"io/fs"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/keelson/keelson/schema"
)

// maxPositionFile bounds the manifests searched for a field's position: a
// bigger one gets the object's line.
const maxPositionFile = 4 << 20

// fieldError is a problem with one field of an object, at the field's line
// and column in its manifest when they can be found, else at the object's.
func fieldError(fsys fs.FS, o *schema.Object, path, msg string) *schema.Error {
	e := errAt(o, msg)
	e.Path = path
	if path == "" || fsys == nil {
		return e
	}
	data, err := fs.ReadFile(fsys, o.File)
	if err != nil || len(data) > maxPositionFile {
		return e
	}
	if line, col, ok := fieldPosition(data, o.Line, o.Doc, path); ok {
		e.Line, e.Column = line, col
	}
	return e
}

// pathStep is one step of a field path: a key, or an index when key is "".
type pathStep struct {
	key   string
	index int
}

// parseFieldPath splits "spec.ports[1].nodePort" into its steps; ok is
// false for a path that is not of that form.
func parseFieldPath(path string) ([]pathStep, bool) {
	var out []pathStep
	for part := range strings.SplitSeq(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" {
			return nil, false
		}
		out = append(out, pathStep{key: key})
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 {
				return nil, false
			}
			out = append(out, pathStep{index: i})
			if after == "" {
				break
			}
			if rest, ok = strings.CutPrefix(after, "["); !ok {
				return nil, false
			}
		}
	}
	return out, len(out) > 0
}

// fieldPosition finds the line and column of the value at path in the YAML
// (or JSON) document of data that starts at line, else in its doc-th
// document (1-based).
func fieldPosition(data []byte, line, doc int, path string) (int, int, bool) {
	steps, ok := parseFieldPath(path)
	if !ok {
		return 0, 0, false
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var byDoc *yaml.Node
	for n := 1; ; n++ {
		var d yaml.Node
		if err := dec.Decode(&d); err != nil {
			break // io.EOF, or a document the loader has reported already
		}
		root := &d
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		if root.Line == line {
			return walkYAML(root, steps)
		}
		if n == doc {
			byDoc = root
		}
	}
	if byDoc != nil {
		return walkYAML(byDoc, steps)
	}
	return 0, 0, false
}

// walkYAML follows steps from n and returns the position of the value
// found.
func walkYAML(n *yaml.Node, steps []pathStep) (int, int, bool) {
	for _, s := range steps {
		for range 16 {
			if n.Kind != yaml.AliasNode || n.Alias == nil {
				break
			}
			n = n.Alias
		}
		var next *yaml.Node
		switch {
		case s.key != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == s.key {
					next = n.Content[i+1]
				}
			}
		case s.key == "" && n.Kind == yaml.SequenceNode && s.index < len(n.Content):
			next = n.Content[s.index]
		}
		if next == nil {
			return 0, 0, false
		}
		n = next
	}
	return n.Line, n.Column, n.Line > 0
}
