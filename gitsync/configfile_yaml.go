package gitsync

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The readers of a config file's values: each reports a value of the wrong
// kind at its line and column, and returns the zero value.

// fields reads a mapping, calling known[key] for each key's value with the
// field's path; other keys and keys set twice are errors.
func (p *fileParser) fields(n *yaml.Node, field string, known map[string]func(*yaml.Node, string)) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "want a mapping of %s, got %s", strings.Join(keys(known), ", "), describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := k.Value
		if field != "" {
			f = field + "." + k.Value
		}
		if line, dup := seen[k.Value]; dup {
			p.errorf(k, f, "set twice (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		read, ok := known[k.Value]
		if !ok || k.Kind != yaml.ScalarNode {
			p.errorf(k, f, "unknown field; known fields here: %s", strings.Join(keys(known), ", "))
			continue
		}
		read(v, f)
	}
}

func (p *fileParser) str(n *yaml.Node, field string) string {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, field, "want a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

// filePath reads a path, relative ones from the config file's folder.
func (p *fileParser) filePath(n *yaml.Node, field string) string {
	s := p.str(n, field)
	if s == "" {
		return ""
	}
	return p.abs(s)
}

func (p *fileParser) abs(path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(p.dir, path)
}

func (p *fileParser) boolean(n *yaml.Node, field string) bool {
	n = deref(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, field, "want true or false, got %s", describe(n))
	}
	return b
}

func (p *fileParser) duration(n *yaml.Node, field string) time.Duration {
	n = deref(n)
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" || err != nil || d < 0 {
		p.errorf(n, field, "want a duration such as 30s, 5m or 1h, got %s", describe(n))
		return 0
	}
	return d
}

func (p *fileParser) namespace(n *yaml.Node, field string) string {
	s := p.str(n, field)
	if s == "" {
		return ""
	}
	if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
		p.errorf(n, field, "%q is not a namespace name: %s", s, strings.Join(errs, "; "))
	}
	return s
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

// describe names a node's value for messages, shortened.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
	return "nothing"
}

func keys(m map[string]func(*yaml.Node, string)) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// strings reads a list of strings.
func (p *fileParser) strings(n *yaml.Node, field string) []string {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "want a list of strings, got %s", describe(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		if v := p.str(item, f); v != "" {
			out = append(out, v)
		} else if deref(item).Kind == yaml.ScalarNode && deref(item).Tag != "!!null" {
			p.errorf(item, f, "empty: give a name")
		}
	}
	return out
}

// oneOf reads a string that must be one of allowed.
func (p *fileParser) oneOf(n *yaml.Node, field string, allowed ...string) string {
	s := p.str(n, field)
	if !slices.Contains(allowed, s) && (s != "" || deref(n).Kind == yaml.ScalarNode && deref(n).Tag != "!!null") {
		p.errorf(n, field, "%q: want one of %s", s, strings.Join(allowed, ", "))
		return ""
	}
	return s
}
