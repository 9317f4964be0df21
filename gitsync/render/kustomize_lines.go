package render

import (
	"bytes"
	"errors"
	"io"

	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// fileDocs are the kinds of the documents of a resource file and the line
// each begins at, for pointing a built object at its line.
type fileDocs struct {
	kinds []string
	lines []int
	next  int // the document the next object of this file comes from
}

// lineOf returns the line of the next object built from the file, of kind
// kind. kustomize keeps a file's objects in the order they are written, so
// the n-th object of a file is its n-th document; a kind that does not
// match (a List expanded, a document deleted by a patch) gives 0, unknown,
// rather than a wrong line.
func (f *fileDocs) lineOf(kind string) int {
	if f == nil || f.next >= len(f.kinds) {
		return 0
	}
	i := f.next
	f.next++
	if f.kinds[i] != kind {
		f.kinds = nil // lost: no line for the rest of the file
		return 0
	}
	return f.lines[i]
}

// parseDocs reads the documents of a YAML or JSON resource file; nil when it
// holds a List or does not parse (no lines then).
func parseDocs(data []byte) *fileDocs {
	dec := kyaml.NewDecoder(bytes.NewReader(data))
	f := &fileDocs{}
	for {
		var n kyaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return f
		}
		if err != nil {
			return nil
		}
		if len(n.Content) == 0 || n.Content[0].Kind != kyaml.MappingNode {
			continue // empty documents build no object
		}
		m := n.Content[0]
		kind := ""
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == "kind" {
				kind = m.Content[i+1].Value
			}
		}
		if kind == "List" || kind == "" {
			return nil
		}
		f.kinds = append(f.kinds, kind)
		f.lines = append(f.lines, m.Line)
	}
}
