package schema

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
)

// The fast path checks a YAML or JSON document against a kind's definition
// without unifying the whole document with it. Unifying makes CUE re-evaluate
// every struct of the (large) generated definitions for every document; most
// of that work gives the same answer each time. So the definition is taken
// apart once, lazily, into a tree of fastNodes (one per field path of the
// definition), and a document is checked field by field: is the field
// allowed, are the required fields there, does each scalar unify with its
// field's constraint. Answers are remembered per node.
//
// The fast path only ever says "valid" or "not sure". Anything it does not
// understand (a .cue file, an empty list, a struct-level constraint) and every
// invalid document goes through the full unification, which produces the
// errors. TestFastPathAgreesWithUnify and the fuzz test hold the two to the
// same verdicts.

// maxScalarMemo bounds the remembered scalar answers per node: names and
// images are mostly unique and would otherwise grow the memo without end.
const maxScalarMemo = 4096

type fastNode struct {
	s   *engine
	def cue.Value
	top bool // the definition allows anything here (e.g. IntOrString)

	children sync.Map // field name -> *fastNode, or nil when not allowed

	reqOnce  sync.Once
	required []string

	elemOnce sync.Once
	elem     *fastNode
	emptyOK  bool

	scalars    sync.Map // kind + literal -> bool
	numScalars atomic.Int32
}

func (s *engine) newFastNode(def cue.Value) *fastNode {
	if def.Err() != nil {
		// Some definitions reached through list elements evaluate to
		// "field not allowed" on their own (though not when unified with
		// a document). Where the field is a plain reference, the definition
		// it refers to evaluates fine.
		if d := rebuild(def); d.Err() == nil {
			def = d
		}
	}
	return &fastNode{s: s, def: def, top: def.IncompleteKind() == cue.TopKind && def.Validate() == nil && isTop(def)}
}

// rebuild evaluates a definition again from the definitions it is made of,
// each taken where it was declared rather than where it was reached.
func rebuild(def cue.Value) cue.Value {
	op, args := def.Expr()
	if op != cue.AndOp {
		return cue.Dereference(def)
	}
	var u cue.Value
	for i, a := range args {
		a = cue.Dereference(a)
		if i == 0 {
			u = a
		} else {
			u = u.Unify(a)
		}
	}
	return u
}

// isTop reports whether def accepts any value: _ (Quantity, IntOrString and
// Time are _ in the generated types).
func isTop(def cue.Value) bool {
	op, _ := def.Expr()
	return op == cue.NoOp && def.IncompleteKind() == cue.TopKind
}

// child returns the node of field name, or nil when the field is not allowed
// or its constraint cannot be found.
func (n *fastNode) child(name string) *fastNode {
	if c, ok := n.children.Load(name); ok {
		return c.(*fastNode)
	}
	var c *fastNode
	sel := cue.Str(name)
	if n.def.Allows(sel) {
		if v, ok := lookupField(n.def, sel); ok {
			c = n.s.newFastNode(v)
		} else {
			// Allowed by a pattern such as [=~"^[a-z]+$"]: T. Let CUE
			// apply the patterns to this one key.
			u := n.def.Unify(n.s.ctx.CompileString(strconv.Quote(name) + ": _"))
			if v := u.LookupPath(cue.MakePath(sel)); v.Exists() && v.Err() == nil {
				c = n.s.newFastNode(v)
			}
		}
	}
	n.children.Store(name, c)
	return c
}

// requiredFields are the fields a document must have here: required (name!)
// ones, and regular ones the definition alone does not make complete.
func (n *fastNode) requiredFields() []string {
	n.reqOnce.Do(func() {
		it, err := n.def.Fields(cue.Optional(true))
		if err != nil {
			return
		}
		for it.Next() {
			sel := it.Selector()
			if sel.IsDefinition() || !sel.IsString() {
				continue
			}
			switch sel.ConstraintType() {
			case cue.OptionalConstraint:
				continue
			case cue.RequiredConstraint:
			default:
				if it.Value().Validate(cue.Concrete(true)) == nil {
					continue
				}
			}
			n.required = append(n.required, sel.Unquoted())
		}
	})
	return n.required
}

// elemNode returns the node of the elements of a list, or nil when CUE
// cannot say (AnyIndex finds nothing on some conjunctions of list types), and
// whether the list may be empty.
func (n *fastNode) elemNode() (*fastNode, bool) {
	n.elemOnce.Do(func() {
		if v := n.def.LookupPath(cue.MakePath(cue.AnyIndex)); v.Exists() {
			n.elem = n.s.newFastNode(v)
		}
		n.emptyOK = n.def.Unify(n.s.ctx.CompileString("[]")).Validate(cue.Concrete(true)) == nil
	})
	return n.elem, n.emptyOK
}

// unifyCheck checks the subtree e by unifying it with the node's definition,
// as the slow path does for the whole document: for the places the field by
// field walk cannot take apart.
func (n *fastNode) unifyCheck(e ast.Expr, w *bytes.Buffer) bool {
	v := n.s.ctx.BuildExpr(e)
	if n.def.Unify(v).Validate(cue.Concrete(true)) != nil {
		return false
	}
	return writeJSON(w, e)
}

// scalarOK unifies a literal with the node's constraint.
func (n *fastNode) scalarOK(lit *ast.BasicLit) bool {
	key := lit.Kind.String() + "\x00" + lit.Value
	if ok, found := n.scalars.Load(key); found {
		return ok.(bool)
	}
	v := n.s.ctx.BuildExpr(&ast.BasicLit{Kind: lit.Kind, Value: lit.Value})
	ok := n.def.Unify(v).Validate(cue.Concrete(true)) == nil
	if n.numScalars.Add(1) <= maxScalarMemo {
		n.scalars.Store(key, ok)
	}
	return ok
}

// check reports whether e is valid here, writing it as JSON to w.
func (n *fastNode) check(e ast.Expr, w *bytes.Buffer) bool {
	switch x := e.(type) {
	case *ast.StructLit:
		if n.top {
			return writeJSON(w, e)
		}
		if n.def.IncompleteKind()&cue.StructKind == 0 {
			return n.unifyCheck(e, w)
		}
		start := w.Len()
		w.WriteByte('{')
		seen := make(map[string]bool, len(x.Elts))
		for i, el := range x.Elts {
			f, ok := el.(*ast.Field)
			if !ok {
				return false
			}
			name, _, err := ast.LabelName(f.Label)
			if err != nil || seen[name] {
				return false
			}
			seen[name] = true
			if i > 0 {
				w.WriteByte(',')
			}
			writeJSONString(w, name)
			w.WriteByte(':')
			if !n.def.Allows(cue.Str(name)) {
				return false
			}
			c := n.child(name)
			if c == nil {
				// Allowed, but CUE does not hand out its definition.
				w.Truncate(start)
				return n.unifyCheck(e, w)
			}
			if !c.check(f.Value, w) {
				return false
			}
		}
		w.WriteByte('}')
		for _, r := range n.requiredFields() {
			if !seen[r] {
				return false
			}
		}
		return true
	case *ast.ListLit:
		if n.top {
			return writeJSON(w, e)
		}
		elem, emptyOK := n.elemNode()
		if elem == nil {
			return n.unifyCheck(e, w)
		}
		if len(x.Elts) == 0 && !emptyOK {
			return false
		}
		w.WriteByte('[')
		for i, el := range x.Elts {
			if i > 0 {
				w.WriteByte(',')
			}
			if !elem.check(el, w) {
				return false
			}
		}
		w.WriteByte(']')
		return true
	case *ast.BasicLit:
		if !n.top && !n.scalarOK(x) {
			return false
		}
		return writeJSONScalar(w, x)
	}
	return false
}

// fastRoot returns the node of a kind's definition.
func (s *engine) fastRoot(k *kindInfo) *fastNode {
	k.fastOnce.Do(func() { k.fast = s.newFastNode(k.def) })
	return k.fast
}

// fastDoc validates a YAML or JSON document on the fast path. It returns false
// when any object of it is invalid or not understood.
func (s *engine) fastDoc(file string, d document) ([]*Object, bool) {
	root, ok := d.expr.(*ast.StructLit)
	if !ok {
		return nil, false
	}
	items := []*ast.StructLit{root}
	if lit(root, "kind") == "List" && strings.HasSuffix(lit(root, "apiVersion"), "v1") { // as objectsOf
		l, ok := field(root, "items").(*ast.ListLit)
		if !ok {
			return nil, false
		}
		items = items[:0]
		for _, e := range l.Elts {
			st, ok := e.(*ast.StructLit)
			if !ok {
				return nil, false
			}
			items = append(items, st)
		}
	}
	var objs []*Object
	var buf bytes.Buffer
	for _, it := range items {
		apiVersion, kind := lit(it, "apiVersion"), lit(it, "kind")
		ki := s.kinds[gvk{apiVersion, kind}]
		if ki == nil {
			return nil, false
		}
		buf.Reset()
		if !s.fastRoot(ki).check(it, &buf) {
			return nil, false
		}
		obj := ki.newObj()
		if err := json.Unmarshal(buf.Bytes(), obj); err != nil || len(check(obj)) > 0 {
			return nil, false
		}
		setDefaults(obj)
		meta, _ := field(it, "metadata").(*ast.StructLit)
		o := &Object{File: file, Doc: d.index, Line: it.Pos().Line(), APIVersion: apiVersion, Kind: kind, Name: lit(meta, "name")}
		if ki.namespaced {
			if o.Namespace = lit(meta, "namespace"); o.Namespace == "" {
				o.Namespace = "default"
			}
		}
		o.Object = obj
		objs = append(objs, o)
	}
	return objs, true
}
