package schema

import (
	"encoding/json"
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"k8s.io/apimachinery/pkg/runtime"
)

// Object is one valid object read from a manifest, decoded into its
// k8s.io/api type with Kubernetes' defaults filled in.
type Object struct {
	File       string
	Doc        int // 1-based index of the document in File
	Line       int // where the object starts
	APIVersion string
	Kind       string
	Namespace  string // "" for cluster-scoped kinds, else defaulted to "default"
	Name       string
	// Object is the typed object, e.g. *appsv1.Deployment.
	Object runtime.Object
	// Via names what rendered the object (Doc.Via); empty for objects
	// written in File as they are.
	Via string
	// Digest identifies the rendered document the object was decoded from
	// (empty for objects of files): File alone does not say whether a
	// rendered object changed, since its other inputs (an overlay's patch,
	// a values file) may have.
	Digest string
}

const msgMissing = "required field is missing"

// target is what one error is about: the object and how to find positions
// inside it.
type target struct {
	file      string
	doc       int
	kind      string
	namespace string
	name      string
	data      cue.Value      // the object as written
	prefix    []cue.Selector // where the object sits in its document (kind: List items)
}

func (t *target) errorAt(path []cue.Selector, msg string) *Error {
	e := &Error{File: t.file, Doc: t.doc, Kind: t.kind, Namespace: t.namespace, Name: t.name,
		Path: formatPath(append(t.prefix[:len(t.prefix):len(t.prefix)], path...)), Msg: msg}
	e.Line, e.Column = t.position(path, false)
	return e
}

// position finds the line and column of the deepest part of path that exists
// in the document as written: of its value when atValue, else of its key.
func (t *target) position(path []cue.Selector, atValue bool) (int, int) {
	for n := len(path); n >= 0; n-- {
		v := t.data.LookupPath(cue.MakePath(path[:n]...))
		if !v.Exists() {
			continue
		}
		p := v.Pos()
		if f, ok := v.Source().(*ast.Field); ok && atValue && n == len(path) {
			p = f.Value.Pos()
		}
		if p.IsValid() && p.Filename() == t.file {
			return p.Line(), p.Column()
		}
	}
	return 0, 0
}

// validateDocs checks every object of a file's documents.
func (s *engine) validateDocs(file string, docs []document) ([]*Object, ErrorList) {
	var objs []*Object
	var errs ErrorList
	for _, d := range docs {
		if !s.noFast && fileKind(file) != "cue" {
			if fast, ok := s.fastDoc(file, d); ok {
				objs = append(objs, fast...)
				continue
			}
		}
		v := s.ctx.BuildExpr(d.expr)
		if err := v.Err(); err != nil {
			t := &target{file: file, doc: d.index, data: v}
			errs = append(errs, t.fromCUE(err)...)
			continue
		}
		for _, item := range objectsOf(v) {
			t := &target{file: file, doc: d.index, data: item.v, prefix: item.path}
			obj, oerrs := s.validateObject(t)
			if obj != nil {
				objs = append(objs, obj)
			}
			errs = append(errs, oerrs...)
		}
	}
	return objs, errs
}

type located struct {
	v    cue.Value
	path []cue.Selector
}

// objectsOf expands a document into its objects: the items of a kind: List or
// of a top-level list (in .cue files), else the document itself.
func objectsOf(v cue.Value) []located {
	var list cue.Value
	var base []cue.Selector
	switch {
	case v.Kind() == cue.ListKind:
		list = v
	case stringAt(v, "kind") == "List" && strings.HasSuffix(stringAt(v, "apiVersion"), "v1"):
		base = []cue.Selector{cue.Str("items")}
		list = v.LookupPath(cue.MakePath(base...))
	default:
		return []located{{v: v}}
	}
	it, err := list.List()
	if err != nil {
		return []located{{v: v}}
	}
	var out []located
	for i := 0; it.Next(); i++ {
		out = append(out, located{v: it.Value(), path: append(base[:len(base):len(base)], cue.Index(i))})
	}
	return out
}

func stringAt(v cue.Value, path string) string {
	s, err := v.LookupPath(cue.ParsePath(path)).String()
	if err != nil {
		return ""
	}
	return s
}

// validateObject checks one object against its kind's definition, then decodes
// it, checks what CUE cannot express well, and fills in defaults.
func (s *engine) validateObject(t *target) (*Object, ErrorList) {
	apiVersion, kind := stringAt(t.data, "apiVersion"), stringAt(t.data, "kind")
	t.kind, t.name = kind, stringAt(t.data, "metadata.name")
	t.namespace = stringAt(t.data, "metadata.namespace")
	if t.data.Kind() != cue.StructKind {
		return nil, ErrorList{t.errorAt(nil, fmt.Sprintf("must be an object with apiVersion and kind, got %s", describe(t.data)))}
	}
	if apiVersion == "" || kind == "" {
		return nil, ErrorList{t.errorAt(nil, "apiVersion and kind are required (e.g. apiVersion: apps/v1, kind: Deployment)")}
	}
	ki := s.kinds[gvk{apiVersion, kind}]
	if ki == nil {
		return s.validateUnknownKind(t, apiVersion, kind)
	}
	if ki.namespaced && t.namespace == "" {
		t.namespace = "default"
	}
	u := ki.def.Unify(t.data)
	var errs ErrorList
	if err := u.Validate(cue.Concrete(true)); err != nil {
		// Validate reports some errors, not all: find every one by walking.
		errs = append(t.walk(ki.def, u, t.data, nil), t.fromCUE(err)...)
	}
	obj, err := decodeTyped(ki, t.data)
	if err != nil && len(errs) == 0 {
		return nil, ErrorList{t.errorAt(nil, "cannot decode: "+err.Error())}
	}
	if err == nil && !hasMissing(errs) {
		// Run the cross-field rules even when fields are wrong elsewhere (an
		// unknown field does not stop decoding), so one run reports both; not
		// when a field they compare is missing, which would only repeat it.
		for _, p := range check(obj) {
			errs = append(errs, t.errorAt(p.path, p.msg))
		}
	}
	if len(errs) > 0 {
		return nil, dedupe(errs)
	}
	setDefaults(obj)
	line, _ := t.position(nil, false)
	return &Object{File: t.file, Doc: t.doc, Line: line, APIVersion: apiVersion, Kind: kind,
		Namespace: nsIf(ki.namespaced, t.namespace), Name: t.name, Object: obj}, nil
}

func hasMissing(errs ErrorList) bool {
	for _, e := range errs {
		if e.Msg == msgMissing {
			return true
		}
	}
	return false
}

// decodeTyped decodes an object as written into its k8s.io/api type.
func decodeTyped(ki *kindInfo, data cue.Value) (runtime.Object, error) {
	b, err := data.MarshalJSON()
	if err != nil {
		return nil, err
	}
	obj := ki.newObj()
	if err := json.Unmarshal(b, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func nsIf(namespaced bool, ns string) string {
	if namespaced {
		return ns
	}
	return ""
}

func (s *engine) unsupported(apiVersion, kind string) string {
	for g := range s.kinds {
		if g.kind == kind {
			return fmt.Sprintf("%s is supported as apiVersion %s, not %s", kind, g.apiVersion, apiVersion)
		}
	}
	return fmt.Sprintf("unsupported kind %s (apiVersion %s); keelson supports %s",
		kind, apiVersion, strings.Join(kindNames(s.kinds), ", "))
}

// walk checks data against the schema field by field: unknown fields (def
// does not allow them), errors at each value of the unified object u, and
// required fields that data lacks. cue.Value.Validate alone stops at the first
// error inside a list element, and every mistake must be reported.
func (t *target) walk(def, u, data cue.Value, path []cue.Selector) ErrorList {
	var errs ErrorList
	switch data.Kind() {
	case cue.StructKind:
		present := map[string]bool{}
		it, err := data.Fields()
		if err != nil {
			return nil
		}
		for it.Next() {
			sel := it.Selector()
			present[sel.Unquoted()] = true
			p := append(path[:len(path):len(path)], sel)
			if def.Exists() && !def.Allows(sel) {
				errs = append(errs, t.errorAt(p, "field not allowed (no such field in "+t.kind+")"))
				continue
			}
			child, _ := lookupField(def, sel)
			errs = append(errs, t.walk(child, u.LookupPath(cue.MakePath(sel)), it.Value(), p)...)
		}
		errs = append(errs, t.missing(u, present, path)...)
	case cue.ListKind:
		it, err := data.List()
		if err != nil {
			return nil
		}
		for i := 0; it.Next(); i++ {
			p := append(path[:len(path):len(path)], cue.Index(i))
			errs = append(errs, t.walk(listElem(def, min(i, 1)), u.LookupPath(cue.MakePath(cue.Index(i))), it.Value(), p)...)
		}
	default:
		if err := u.Err(); err != nil {
			errs = append(errs, t.fromCUE(err)...)
		} else if err := u.Validate(cue.Concrete(true)); err != nil {
			errs = append(errs, t.fromCUE(err)...)
		}
	}
	return errs
}

// missing reports the required fields of the struct u that the input lacks.
// A field the generated types hold as a regular struct or list (a Go field
// without omitempty, like a Deployment's template) is missing when the schema
// alone does not make it complete.
func (t *target) missing(u cue.Value, present map[string]bool, path []cue.Selector) ErrorList {
	var errs ErrorList
	it, err := u.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	for it.Next() {
		sel := it.Selector()
		if present[sel.Unquoted()] || sel.IsDefinition() || !sel.IsString() {
			continue
		}
		p := append(path[:len(path):len(path)], cue.Str(sel.Unquoted()))
		switch sel.ConstraintType() {
		case cue.OptionalConstraint:
			continue
		case cue.RequiredConstraint:
		default:
			if it.Value().Validate(cue.Concrete(true)) == nil {
				continue
			}
		}
		errs = append(errs, t.errorAt(p, msgMissing))
	}
	return errs
}

// listElem returns the schema of element i of a list schema. CUE's AnyIndex
// lookup finds nothing when the list type is a conjunction ([...A] & [...B]),
// as it is where the kinds package narrows a generated list, so the element
// is found by unifying with a list of i+1 elements instead.
func listElem(def cue.Value, i int) cue.Value {
	if !def.Exists() {
		return def
	}
	if v := def.LookupPath(cue.MakePath(cue.AnyIndex)); v.Exists() {
		return v
	}
	elems := make([]ast.Expr, i+1)
	for j := range elems {
		elems[j] = ast.NewIdent("_")
	}
	return def.Unify(def.Context().BuildExpr(ast.NewList(elems...))).LookupPath(cue.MakePath(cue.Index(i)))
}

// lookupField finds the schema of a field, whether the schema has it as a
// regular, optional (name?) or required (name!) field, or through a pattern.
func lookupField(def cue.Value, sel cue.Selector) (cue.Value, bool) {
	if !def.Exists() {
		return def, false
	}
	for _, s := range []cue.Selector{sel.Optional(), sel.Required(), sel, cue.AnyString} {
		if v := def.LookupPath(cue.MakePath(s)); v.Exists() {
			return v, true
		}
	}
	return cue.Value{}, false
}

// dedupe drops repeated errors, and errors inside a field already reported
// as missing.
func dedupe(errs ErrorList) ErrorList {
	var missing []string
	for _, e := range errs {
		if e.Msg == msgMissing {
			missing = append(missing, e.Path)
		}
	}
	under := func(p string) bool {
		for _, m := range missing {
			if strings.HasPrefix(p, m) && len(p) > len(m) && (p[len(m)] == '.' || p[len(m)] == '[') {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		k := e.Path + "\x00" + e.Msg
		if seen[k] || under(e.Path) {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}
