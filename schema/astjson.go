package schema

import (
	"bytes"
	"encoding/json"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// writeJSON writes a YAML or JSON document's syntax tree as JSON.
func writeJSON(w *bytes.Buffer, e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.StructLit:
		w.WriteByte('{')
		for i, el := range x.Elts {
			f, ok := el.(*ast.Field)
			if !ok {
				return false
			}
			name, _, err := ast.LabelName(f.Label)
			if err != nil {
				return false
			}
			if i > 0 {
				w.WriteByte(',')
			}
			writeJSONString(w, name)
			w.WriteByte(':')
			if !writeJSON(w, f.Value) {
				return false
			}
		}
		w.WriteByte('}')
	case *ast.ListLit:
		w.WriteByte('[')
		for i, el := range x.Elts {
			if i > 0 {
				w.WriteByte(',')
			}
			if !writeJSON(w, el) {
				return false
			}
		}
		w.WriteByte(']')
	case *ast.BasicLit:
		return writeJSONScalar(w, x)
	default:
		return false
	}
	return true
}

func writeJSONString(w *bytes.Buffer, s string) {
	b, _ := json.Marshal(s)
	w.Write(b)
}

func writeJSONScalar(w *bytes.Buffer, lit *ast.BasicLit) bool {
	switch lit.Kind {
	case token.STRING:
		s, err := literal.Unquote(lit.Value)
		if err != nil {
			return false
		}
		writeJSONString(w, s)
	case token.INT, token.FLOAT:
		var num literal.NumInfo
		if err := literal.ParseNum(lit.Value, &num); err != nil {
			return false
		}
		w.WriteString(num.String())
	case token.TRUE, token.FALSE, token.NULL:
		w.WriteString(lit.Value)
	default:
		return false
	}
	return true
}

// field returns the value of a field of a struct literal, or nil.
func field(st *ast.StructLit, name string) ast.Expr {
	if st == nil {
		return nil
	}
	for _, el := range st.Elts {
		if f, ok := el.(*ast.Field); ok {
			if n, _, err := ast.LabelName(f.Label); err == nil && n == name {
				return f.Value
			}
		}
	}
	return nil
}

// lit returns a string field of a struct literal, or "".
func lit(st *ast.StructLit, name string) string {
	b, ok := field(st, name).(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return ""
	}
	s, err := literal.Unquote(b.Value)
	if err != nil {
		return ""
	}
	return s
}
