package schema

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// CRDAPIVersion and CRDKind name the CustomResourceDefinition kind, which
// registers the kinds of custom resources.
const (
	CRDAPIVersion = "apiextensions.k8s.io/v1"
	CRDKind       = "CustomResourceDefinition"
)

// WithCustomResources makes the kinds the given CustomResourceDefinitions
// define known to Load, beside those defined by CRDs in the tree itself: the
// cluster's CRDs, so that a revision adding only custom resources of a CRD
// applied earlier validates. A CRD of the tree wins over one given here with
// the same name.
func WithCustomResources(defs ...*apiextensionsv1.CustomResourceDefinition) Option {
	return func(c *config) { c.crds = append(c.crds, defs...) }
}

// pendingCustom is a document of a kind that is not built in, held until the
// CRDs of the whole tree are known. Its syntax carries no CUE context, so any
// engine can build it again.
type pendingCustom struct {
	expr       ast.Expr
	parseName  string // the name the document was parsed under, in its positions
	prefix     []cue.Selector
	apiVersion string
	kind       string
	// memo holds the outcome per CRD version (customDefKey → *customResult):
	// a file the Cache answers hands the same pendingCustom to every Load, so
	// an unchanged custom resource of an unchanged CRD is validated once.
	memo sync.Map
}

type customResult struct {
	obj  *Object
	errs ErrorList
}

// deferCustom returns the error that stands for a document of an unknown
// kind until resolveCustom finds its CRD; the message is the one people see
// when there is none.
func (s *engine) deferCustom(t *target, apiVersion, kind string) ErrorList {
	gv, _ := schema.ParseGroupVersion(apiVersion)
	if !customGroup(gv.Group) || s.builtinGroup(gv.Group) {
		// Kubernetes' own groups hold no custom resources: a kind of theirs
		// that keelson lacks, or a version it does not serve.
		return ErrorList{t.errorAt([]cue.Selector{cue.Str("kind")}, s.unsupported(apiVersion, kind))}
	}
	var expr ast.Expr
	if e, ok := t.data.Source().(ast.Expr); ok {
		expr = e
	} else if e, ok := t.data.Syntax(cue.Final()).(ast.Expr); ok {
		expr = e
	}
	e := t.errorAt([]cue.Selector{cue.Str("kind")}, fmt.Sprintf(
		"unsupported kind %s (apiVersion %s): no CustomResourceDefinition for %s/%s in this revision or the cluster",
		kind, apiVersion, gv.Group, kind))
	if expr != nil {
		e.pending = &pendingCustom{expr: expr, parseName: t.file, prefix: t.prefix, apiVersion: apiVersion, kind: kind}
	}
	return ErrorList{e}
}

// customGroup reports whether a group may hold custom resources: one with a
// dot, outside the groups Kubernetes reserves.
func customGroup(g string) bool {
	return strings.Contains(g, ".") && !strings.HasSuffix(g, ".k8s.io") && !strings.HasSuffix(g, ".kubernetes.io") && g != "k8s.io" && g != "kubernetes.io"
}

func (s *engine) builtinGroup(group string) bool {
	for g := range s.kinds {
		if gv, _ := schema.ParseGroupVersion(g.apiVersion); gv.Group == group {
			return true
		}
	}
	return false
}

// customKind is one served version of a kind a CRD defines.
type customKind struct {
	crd     *apiextensionsv1.CustomResourceDefinition
	version *apiextensionsv1.CustomResourceDefinitionVersion
	hash    [sha256.Size]byte // of the CRD's spec, for the compiled schema
}

// customIndex finds the CRD version of a custom resource's apiVersion and kind.
type customIndex map[gvk]*customKind

func newCustomIndex(tree []*Object, given []*apiextensionsv1.CustomResourceDefinition) customIndex {
	idx := customIndex{}
	add := func(crd *apiextensionsv1.CustomResourceDefinition) {
		b, _ := json.Marshal(crd.Spec)
		h := sha256.Sum256(b)
		for i := range crd.Spec.Versions {
			v := &crd.Spec.Versions[i]
			if v.Served {
				idx[gvk{crd.Spec.Group + "/" + v.Name, crd.Spec.Names.Kind}] = &customKind{crd: crd, version: v, hash: h}
			}
		}
	}
	for _, c := range given {
		add(c)
	}
	for _, o := range tree {
		if c, ok := o.Object.(*apiextensionsv1.CustomResourceDefinition); ok {
			add(c)
		}
	}
	return idx
}

// resolveCustom validates the documents of kinds that are not built in
// against the CRDs of the tree and of the cluster, now that all are known.
// Those with no CRD keep their error.
func (s *Schema) resolveCustom(ctx context.Context, objs []*Object, errs ErrorList, cfg *config) ([]*Object, ErrorList) {
	var pending bool
	for _, e := range errs {
		pending = pending || e.pending != nil
	}
	if !pending {
		return objs, errs
	}
	idx := newCustomIndex(objs, cfg.crds)
	var eng *engine
	defer func() {
		if eng != nil {
			s.put(eng)
		}
	}()
	out := errs[:0:0]
	for _, e := range errs {
		p := e.pending
		var ck *customKind
		if p != nil {
			ck = idx[gvk{p.apiVersion, p.kind}]
		}
		if ck == nil || ctx.Err() != nil {
			out = append(out, e)
			continue
		}
		key := customDefKey{ck.hash, ck.version.Name}
		r, ok := p.memo.Load(key)
		if !ok {
			if eng == nil {
				var err error
				if eng, err = s.get(); err != nil {
					return objs, append(errs, &Error{Msg: err.Error()})
				}
			}
			obj, oerrs := eng.validateCustom(p, ck)
			r, _ = p.memo.LoadOrStore(key, &customResult{obj: obj, errs: oerrs})
		}
		obj, oerrs := r.(*customResult).copy(cfg.shared)
		for _, oe := range oerrs {
			oe.File, oe.Doc, oe.Via = e.File, e.Doc, e.Via
			if e.Via != "" {
				oe.Line, oe.Column = e.Line, 0
			}
		}
		if obj != nil {
			obj.File, obj.Doc, obj.Via = e.File, e.Doc, e.Via
			if e.Via != "" {
				obj.Line = e.Line
			}
			objs = append(objs, obj)
		}
		out = append(out, oerrs...)
	}
	return objs, out
}

// copy returns the outcome for one Load to point at its file and change:
// the object a deep copy unless shared, as the Cache gives its own.
func (r *customResult) copy(shared bool) (*Object, ErrorList) {
	var obj *Object
	if r.obj != nil {
		c := *r.obj
		if !shared {
			c.Object = r.obj.Object.DeepCopyObject()
		}
		obj = &c
	}
	return obj, copyErrors(r.errs, "")
}

// validateCustom checks one custom resource against its CRD version's
// openAPIV3Schema, fills in the schema's defaults and decodes it.
func (s *engine) validateCustom(p *pendingCustom, ck *customKind) (*Object, ErrorList) {
	data := s.ctx.BuildExpr(p.expr)
	t := &target{file: p.parseName, data: data, prefix: p.prefix, kind: p.kind,
		name: stringAt(data, "metadata.name"), namespace: stringAt(data, "metadata.namespace")}
	namespaced := ck.crd.Spec.Scope == apiextensionsv1.NamespaceScoped
	if !namespaced && t.namespace != "" {
		return nil, ErrorList{t.errorAt(sels("metadata", "namespace"),
			fmt.Sprintf("%s is cluster-scoped (CustomResourceDefinition %s): remove the namespace", p.kind, ck.crd.Name))}
	}
	if namespaced && t.namespace == "" {
		t.namespace = "default"
	}
	def, err := s.customDef(ck)
	if err != nil {
		return nil, ErrorList{t.errorAt(nil, fmt.Sprintf("CustomResourceDefinition %s: %v", ck.crd.Name, err))}
	}
	withNS := data
	if namespaced {
		withNS = data.FillPath(cue.ParsePath("metadata.namespace"), t.namespace)
	}
	u := def.Unify(withNS)
	var errs ErrorList
	if err := u.Validate(cue.Concrete(true)); err != nil {
		errs = append(t.walk(def, u, data, nil), t.fromCUE(err)...)
	}
	if len(errs) > 0 {
		return nil, dedupe(errs)
	}
	b, err := withNS.MarshalJSON()
	if err != nil {
		return nil, ErrorList{t.errorAt(nil, "cannot decode: "+err.Error())}
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(b); err != nil {
		return nil, ErrorList{t.errorAt(nil, "cannot decode: "+err.Error())}
	}
	if ck.version.Schema != nil {
		applyDefaults(obj.Object, ck.version.Schema.OpenAPIV3Schema)
	}
	for _, fp := range append(check(obj), checkCustomMeta(obj)...) {
		errs = append(errs, t.errorAt(fp.path, fp.msg))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	line, _ := t.position(nil, false)
	return &Object{Line: line, APIVersion: p.apiVersion, Kind: p.kind,
		Namespace: nsIf(namespaced, t.namespace), Name: t.name, Object: obj}, nil
}

// checkCustomMeta checks the metadata the CRD's schema leaves open: the name
// and the labels, which must be what the API server would take.
func checkCustomMeta(obj *unstructured.Unstructured) []fieldProblem {
	var ps []fieldProblem
	if n := obj.GetName(); n != "" {
		if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
			ps = append(ps, fieldProblem{sels("metadata", "name"), fmt.Sprintf("%q is not a valid name: %s", n, strings.Join(msgs, "; "))})
		}
	}
	for k, v := range obj.GetLabels() {
		msgs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...)
		if len(msgs) > 0 {
			ps = append(ps, fieldProblem{sels("metadata", "labels", k), fmt.Sprintf("label %s=%q: %s", k, v, strings.Join(msgs, "; "))})
		}
	}
	return ps
}
