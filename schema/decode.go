package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	cuejson "cuelang.org/go/encoding/json"
	cueyaml "cuelang.org/go/encoding/yaml"
)

// DefaultMaxFileSize is the largest manifest file read unless WithMaxFileSize
// says otherwise: large enough for any hand-written manifest, small enough that
// a stray binary or generated dump is refused quickly.
const DefaultMaxFileSize = 1 << 20

// maxDepth bounds how deeply documents may nest. The deepest Kubernetes fields
// (affinity terms inside a CronJob) sit about 20 levels down.
const maxDepth = 100

// document is one document of a file, as CUE syntax with positions.
type document struct {
	index int // 1-based
	expr  ast.Expr
}

// fileKind is how a file is parsed, by its extension.
func fileKind(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return "yaml"
	case ".json":
		return "json"
	case ".cue":
		return "cue"
	}
	return ""
}

// IsManifest reports whether a file name has an extension keelson reads
// manifests from: .yaml, .yml, .json or .cue.
func IsManifest(name string) bool { return fileKind(name) != "" }

// parseFile checks a file as a whole and splits it into documents. Any error
// is returned in the list; the documents read before it are still returned.
func parseFile(name string, data []byte, maxSize int64) ([]document, ErrorList) {
	fileErr := func(line, col int, format string, args ...any) ErrorList {
		return ErrorList{{File: name, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}}
	}
	if int64(len(data)) > maxSize {
		return nil, fileErr(0, 0, "file is %d bytes, over the limit of %d bytes (raise it with --max-file-size)", len(data), maxSize)
	}
	if !utf8.Valid(data) {
		line, col := invalidUTF8(data)
		return nil, fileErr(line, col, "file is not valid UTF-8")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fileErr(0, 0, "file is empty: it holds no object")
	}
	var docs []document
	var errs ErrorList
	switch fileKind(name) {
	case "yaml":
		docs, errs = parseYAML(name, data)
	case "json":
		expr, err := cuejson.Extract(name, data)
		if err != nil {
			return nil, syntaxErrors(name, 1, err)
		}
		docs = []document{{index: 1, expr: expr}}
	case "cue":
		f, err := parser.ParseFile(name, data)
		if err != nil {
			return nil, syntaxErrors(name, 1, err)
		}
		docs = []document{{index: 1, expr: fileExpr(f)}}
	default:
		return nil, fileErr(0, 0, "not a manifest: keelson reads .yaml, .yml, .json and .cue files")
	}
	for _, d := range docs {
		// In CUE, repeating a field unifies it; only YAML and JSON forbid it.
		errs = append(errs, checkSyntax(name, d, fileKind(name) != "cue")...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return docs, nil
}

func parseYAML(name string, data []byte) ([]document, ErrorList) {
	dec := cueyaml.NewDecoder(name, bytes.NewReader(data))
	var docs []document
	for i := 1; ; i++ {
		expr, err := dec.Extract()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs := syntaxErrors(name, i, err)
			for _, e := range errs {
				if tabIndented(data, e.Line) {
					e.Msg += " (YAML does not allow tabs for indentation: use spaces)"
				}
			}
			return docs, errs
		}
		if isNull(expr) {
			// An empty document: a stray `---`, or one holding only comments.
			return docs, ErrorList{{File: name, Line: lineOf(expr), Doc: i,
				Msg: "empty document: it holds no object (a stray `---`, or only comments)"}}
		}
		docs = append(docs, document{index: i, expr: expr})
	}
	return docs, nil
}

// fileExpr turns a CUE file into one expression whose value is the file's
// value: its declarations as a struct, or its single list or struct literal.
func fileExpr(f *ast.File) ast.Expr {
	var decls []ast.Decl
	for _, d := range f.Decls {
		switch d.(type) {
		case *ast.Package, *ast.ImportDecl, *ast.CommentGroup, *ast.Attribute:
			continue
		}
		decls = append(decls, d)
	}
	if len(decls) == 1 {
		if e, ok := decls[0].(*ast.EmbedDecl); ok {
			return e.Expr
		}
	}
	s := &ast.StructLit{Elts: decls}
	ast.SetPos(s, f.Pos())
	return s
}

// isNull reports an empty YAML document: null, or `*null | _` when it holds
// only comments.
func isNull(e ast.Expr) bool {
	if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.OR {
		if u, ok := b.X.(*ast.UnaryExpr); ok && u.Op == token.MUL {
			e = u.X
		}
	}
	l, ok := e.(*ast.BasicLit)
	return ok && l.Kind == token.NULL
}

func lineOf(n ast.Node) int {
	if p := n.Pos(); p.IsValid() {
		return p.Line()
	}
	return 0
}

// syntaxErrors converts a parser error into the list, one entry per distinct
// position.
func syntaxErrors(name string, doc int, err error) ErrorList {
	var out ErrorList
	for _, e := range cueerrors.Errors(err) {
		msg := e.Error()
		line, col := 0, 0
		if p := e.Position(); p.IsValid() {
			line, col = p.Line(), p.Column()
		} else {
			line, msg = splitLine(name, msg)
		}
		out = append(out, &Error{File: name, Line: line, Column: col, Doc: doc, Msg: "syntax error: " + msg})
	}
	if len(out) == 0 {
		out = ErrorList{{File: name, Doc: doc, Msg: "syntax error: " + err.Error()}}
	}
	return out
}

// splitLine takes the "name:line: " prefix off a YAML parser message.
func splitLine(name, msg string) (int, string) {
	rest, ok := strings.CutPrefix(msg, name+":")
	if !ok {
		return 0, msg
	}
	var line int
	if n, _ := fmt.Sscanf(rest, "%d:", &line); n == 1 {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			return line, after
		}
	}
	return 0, msg
}

func invalidUTF8(data []byte) (line, col int) {
	line, col = 1, 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 {
			return line, col
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		data = data[size:]
	}
	return line, col
}

// checkSyntax rejects what the parsers let through but Kubernetes would not
// take: duplicate keys in one mapping, and nesting deeper than maxDepth.
func checkSyntax(name string, d document, noDuplicates bool) ErrorList {
	var errs ErrorList
	depth := 0
	tooDeep := false
	ast.Walk(d.expr, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.StructLit, *ast.ListLit:
			depth++
			if depth > maxDepth {
				if !tooDeep {
					p := n.Pos()
					errs = append(errs, &Error{File: name, Line: p.Line(), Column: p.Column(), Doc: d.index,
						Msg: fmt.Sprintf("document nests deeper than %d levels", maxDepth)})
				}
				tooDeep = true
				return false
			}
			if s, ok := x.(*ast.StructLit); ok && noDuplicates {
				errs = append(errs, duplicateKeys(name, d.index, s)...)
			}
		}
		return true
	}, func(n ast.Node) {
		switch n.(type) {
		case *ast.StructLit, *ast.ListLit:
			depth--
		}
	})
	return errs
}

func duplicateKeys(name string, doc int, s *ast.StructLit) ErrorList {
	var errs ErrorList
	seen := map[string]token.Pos{}
	for _, el := range s.Elts {
		f, ok := el.(*ast.Field)
		if !ok {
			continue
		}
		key, _, err := ast.LabelName(f.Label)
		if err != nil {
			continue
		}
		if first, dup := seen[key]; dup {
			p := f.Label.Pos()
			errs = append(errs, &Error{File: name, Line: p.Line(), Column: p.Column(), Doc: doc,
				Msg: fmt.Sprintf("duplicate key %q (first at line %d)", key, first.Line())})
			continue
		}
		seen[key] = f.Label.Pos()
	}
	return errs
}

// tabIndented reports whether the 1-based line of data starts with a tab.
func tabIndented(data []byte, line int) bool {
	if line < 1 {
		return false
	}
	lines := bytes.SplitN(data, []byte("\n"), line+1)
	if len(lines) < line {
		return false
	}
	l := lines[line-1]
	return len(l) > 0 && bytes.IndexByte(l[:len(l)-len(bytes.TrimLeft(l, " \t"))], '\t') >= 0
}
