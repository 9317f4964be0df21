package schema

import (
	"fmt"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
)

// fromCUE turns a CUE evaluation error into plain errors: the field path
// without the definition's name, the position in the input (not in the
// schema), and a message that says what was expected and what was found.
func (t *target) fromCUE(err error) ErrorList {
	var out ErrorList
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		if strings.Contains(format, "errors in empty disjunction") {
			continue // the alternatives follow as errors of their own
		}
		parts := e.Path()
		if len(parts) > 0 && strings.HasPrefix(parts[0], "#") {
			parts = parts[1:]
		}
		path := selectors(parts)
		ee := t.errorAt(path, t.message(path, format, args))
		ee.Line, ee.Column = t.position(path, true)
		for _, p := range cueerrors.Positions(e) {
			if p.Filename() == t.file && p.IsValid() {
				ee.Line, ee.Column = p.Line(), p.Column()
				break
			}
		}
		out = append(out, ee)
	}
	return out
}

func selectors(parts []string) []cue.Selector {
	out := make([]cue.Selector, 0, len(parts))
	for _, p := range parts {
		if i, err := strconv.Atoi(p); err == nil && i >= 0 {
			out = append(out, cue.Index(i))
			continue
		}
		if uq, err := strconv.Unquote(p); err == nil {
			p = uq
		}
		out = append(out, cue.Str(p))
	}
	return out
}

// message rewrites CUE's wording for the errors people meet most.
func (t *target) message(path []cue.Selector, format string, args []any) string {
	if strings.HasPrefix(format, "incomplete value") || strings.Contains(format, "field is required but not present") {
		return msgMissing
	}
	got := t.data.LookupPath(cue.MakePath(path...))
	if !got.Exists() || got.Kind() == cue.BottomKind {
		return fmt.Sprintf(format, args...)
	}
	switch {
	case strings.HasPrefix(format, "conflicting values %s and %s (mismatched types"):
		want := args[0]
		if fmt.Sprint(args[0]) == describeValue(got) {
			want = args[1]
		}
		return fmt.Sprintf("must be %s, got %s", typeWord(fmt.Sprint(want)), describe(got))
	case format == "conflicting values %s and %s":
		want := args[0]
		if fmt.Sprint(args[0]) == describeValue(got) {
			want = args[1]
		}
		return fmt.Sprintf("must be %v, got %s", want, describe(got))
	case strings.HasPrefix(format, "invalid value %v (out of bound %s)"):
		return fmt.Sprintf("must be %v, got %v", args[1], args[0])
	case strings.HasPrefix(format, "incompatible list lengths") && len(args) > 0 && fmt.Sprint(args[0]) == "0":
		return "must not be empty"
	case format == "field not allowed":
		return "field not allowed (no such field in " + t.kind + ")"
	}
	return fmt.Sprintf(format, args...)
}

// typeWord names a CUE type the way a person would.
func typeWord(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case kind == "float", kind == "number":
		return "a number"
	case kind == "struct", strings.HasPrefix(kind, "{"):
		return "an object"
	case kind == "list", strings.HasPrefix(kind, "["):
		return "a list"
	case kind == "null":
		return "null"
	}
	return kind
}

// describeValue prints a scalar the way CUE prints it in messages.
func describeValue(v cue.Value) string {
	switch v.Kind() {
	case cue.StringKind:
		s, _ := v.String()
		return strconv.Quote(s)
	case cue.IntKind, cue.FloatKind, cue.NumberKind, cue.BoolKind, cue.NullKind:
		return fmt.Sprint(v)
	}
	return ""
}

// describe says what a value in the input is, for "got …" in messages.
func describe(v cue.Value) string {
	switch v.Kind() {
	case cue.StructKind:
		return "an object"
	case cue.ListKind:
		return "a list"
	case cue.BottomKind:
		return "nothing"
	}
	if d := describeValue(v); d != "" {
		return d
	}
	return fmt.Sprint(v)
}

// formatPath prints a field path as people write it:
// spec.template.spec.containers[0].image, metadata.labels["app.kubernetes.io/name"].
func formatPath(path []cue.Selector) string {
	var b strings.Builder
	for _, s := range path {
		switch s.Type() {
		case cue.IndexLabel:
			fmt.Fprintf(&b, "[%d]", s.Index())
		default:
			name := s.Unquoted()
			if isIdent(name) {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(name)
			} else {
				fmt.Fprintf(&b, "[%q]", name)
			}
		}
	}
	return b.String()
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r == '$' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
