package schema

import (
	"encoding/json"
	"fmt"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/encoding/jsonschema"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// maxCustomDefs bounds the compiled CRD schemas an engine keeps; past it they
// are all forgotten, which keeps the cache simple and bounded.
const maxCustomDefs = 1000

type customDefKey struct {
	hash    [32]byte
	version string
}

// customDef returns the closed CUE definition of a CRD version's schema,
// compiled once per engine and CRD content: CUE values of one context cannot
// be unified with those of another, so each engine holds its own.
func (s *engine) customDef(ck *customKind) (cue.Value, error) {
	key := customDefKey{ck.hash, ck.version.Name}
	if v, ok := s.custom[key]; ok {
		return v, nil
	}
	v, err := s.compileCustom(ck.crd, ck.version.Name)
	if err != nil {
		return cue.Value{}, err
	}
	if s.custom == nil || len(s.custom) >= maxCustomDefs {
		s.custom = map[customDefKey]cue.Value{}
	}
	s.custom[key] = v
	return v, nil
}

// compileCustom turns a CRD version's openAPIV3Schema into a CUE definition.
// Wrapping the extracted fields in a definition closes its structs: a field
// the schema does not name is refused (unless the schema preserves unknown
// fields there), as kubectl's strict field validation refuses it, instead of
// being dropped without a word.
func (s *engine) compileCustom(crd *apiextensionsv1.CustomResourceDefinition, version string) (cue.Value, error) {
	b, err := json.Marshal(crd)
	if err != nil {
		return cue.Value{}, err
	}
	src := s.ctx.CompileBytes(b)
	if err := src.Err(); err != nil {
		return cue.Value{}, fmt.Errorf("read: %w", err)
	}
	crds, err := jsonschema.ExtractCRDs(src, nil)
	if err != nil {
		return cue.Value{}, fmt.Errorf("openAPIV3Schema: %w", err)
	}
	if len(crds) != 1 || crds[0].Versions[version] == nil {
		return cue.Value{}, fmt.Errorf("version %s has no schema", version)
	}
	f := crds[0].Versions[version]
	wrapped := &ast.File{}
	var body []ast.Decl
	for _, d := range f.Decls {
		switch d.(type) {
		case *ast.Package:
		case *ast.ImportDecl:
			wrapped.Decls = append(wrapped.Decls, d)
		default:
			body = append(body, d)
		}
	}
	wrapped.Decls = append(wrapped.Decls, &ast.Field{Label: ast.NewIdent("#CR"), Value: &ast.StructLit{Elts: body}})
	v := s.ctx.BuildFile(wrapped)
	if err := v.Err(); err != nil {
		return cue.Value{}, fmt.Errorf("openAPIV3Schema: %w", err)
	}
	def := v.LookupPath(cue.ParsePath("#CR"))
	if err := def.Err(); err != nil {
		return cue.Value{}, fmt.Errorf("openAPIV3Schema: %w", err)
	}
	return def, nil
}
