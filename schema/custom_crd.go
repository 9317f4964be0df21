package schema

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/jsonpath"
	sigsjson "sigs.k8s.io/json"
)

// validateUnknownKind handles a document whose kind has no CUE definition:
// a CustomResourceDefinition, checked in Go, or a custom resource, held until
// the CRDs of the tree are known.
func (s *engine) validateUnknownKind(t *target, apiVersion, kind string) (*Object, ErrorList) {
	if apiVersion != CRDAPIVersion || kind != CRDKind {
		return nil, s.deferCustom(t, apiVersion, kind)
	}
	b, err := t.data.MarshalJSON()
	if err != nil {
		return nil, ErrorList{t.errorAt(nil, "cannot decode: "+err.Error())}
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	strict, err := sigsjson.UnmarshalStrict(b, crd)
	if err != nil {
		return nil, ErrorList{t.errorAt(nil, "cannot decode: "+err.Error())}
	}
	var errs ErrorList
	for _, e := range strict {
		msg := e.Error()
		if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
			if p, err := strconv.Unquote(f); err == nil {
				errs = append(errs, t.errorAt(jsonPathSelectors(p), "field not allowed (no such field in CustomResourceDefinition)"))
				continue
			}
		}
		errs = append(errs, t.errorAt(nil, msg))
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)
	for _, p := range checkCRD(crd) {
		errs = append(errs, t.errorAt(p.path, p.msg))
	}
	for _, p := range check(crd) {
		errs = append(errs, t.errorAt(p.path, p.msg))
	}
	if len(errs) == 0 {
		for i, v := range crd.Spec.Versions {
			if _, err := s.compileCustom(crd, v.Name); err != nil && v.Schema != nil {
				errs = append(errs, t.errorAt(sels("spec", "versions", i, "schema", "openAPIV3Schema"), err.Error()))
			}
		}
	}
	if len(errs) > 0 {
		return nil, dedupe(errs)
	}
	line, _ := t.position(nil, false)
	return &Object{File: t.file, Doc: t.doc, Line: line, APIVersion: apiVersion, Kind: kind, Name: crd.Name, Object: crd}, nil
}

var indexRE = regexp.MustCompile(`\[(\d+)\]`)

// jsonPathSelectors turns a decoder's field path (spec.versions[0].name)
// into selectors.
func jsonPathSelectors(p string) []cue.Selector {
	var out []cue.Selector
	for _, part := range strings.Split(indexRE.ReplaceAllString(p, ".[$1]"), ".") {
		if n, ok := strings.CutPrefix(part, "["); ok {
			if i, err := strconv.Atoi(strings.TrimSuffix(n, "]")); err == nil {
				out = append(out, cue.Index(i))
				continue
			}
		}
		if part != "" {
			out = append(out, cue.Str(part))
		}
	}
	return out
}

// checkCRD checks what keelson needs of a CRD to register its kind: valid
// names, a name of <plural>.<group>, one storage version, and a schema for
// each served version.
func checkCRD(crd *apiextensionsv1.CustomResourceDefinition) []fieldProblem {
	var ps []fieldProblem
	bad := func(msg string, path ...any) { ps = append(ps, fieldProblem{sels(path...), msg}) }
	sp, n := &crd.Spec, &crd.Spec.Names
	if errs := validation.IsDNS1123Subdomain(sp.Group); sp.Group == "" || len(errs) > 0 || !strings.Contains(sp.Group, ".") {
		bad(fmt.Sprintf("must be a DNS subdomain with at least one dot (like example.com), got %q", sp.Group), "spec", "group")
	}
	for _, f := range []struct{ field, v string }{{"plural", n.Plural}, {"singular", n.Singular}, {"kind", strings.ToLower(n.Kind)}, {"listKind", strings.ToLower(n.ListKind)}} {
		if errs := validation.IsDNS1035Label(f.v); len(errs) > 0 {
			bad(fmt.Sprintf("must be a lower-case DNS label (the kinds in CamelCase), got %q: %s", f.v, strings.Join(errs, "; ")), "spec", "names", f.field)
		}
	}
	if n.Kind != "" && (n.Kind[0] < 'A' || n.Kind[0] > 'Z') {
		bad(fmt.Sprintf("must start with an upper-case letter, got %q", n.Kind), "spec", "names", "kind")
	}
	if want := n.Plural + "." + sp.Group; crd.Name != want {
		bad(fmt.Sprintf("must be <spec.names.plural>.<spec.group>, here %q, got %q", want, crd.Name), "metadata", "name")
	}
	if sp.Scope != apiextensionsv1.NamespaceScoped && sp.Scope != apiextensionsv1.ClusterScoped {
		bad(fmt.Sprintf("must be Namespaced or Cluster, got %q", sp.Scope), "spec", "scope")
	}
	if len(sp.Versions) == 0 {
		bad(msgMissing, "spec", "versions")
	}
	storage, served, seen := 0, 0, map[string]bool{}
	for i, v := range sp.Versions {
		if errs := validation.IsDNS1035Label(v.Name); len(errs) > 0 {
			bad(fmt.Sprintf("must be a version name like v1 or v1beta1, got %q", v.Name), "spec", "versions", i, "name")
		} else if seen[v.Name] {
			bad(fmt.Sprintf("version %s is listed twice", v.Name), "spec", "versions", i, "name")
		}
		seen[v.Name] = true
		if v.Storage {
			storage++
		}
		if v.Served {
			served++
		}
		if v.Served && (v.Schema == nil || v.Schema.OpenAPIV3Schema == nil) {
			bad("a served version needs schema.openAPIV3Schema: keelson validates custom resources against it", "spec", "versions", i, "schema")
		} else if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil && v.Schema.OpenAPIV3Schema.Type != "object" {
			bad(fmt.Sprintf("the root of the schema must be of type object, got %q", v.Schema.OpenAPIV3Schema.Type), "spec", "versions", i, "schema", "openAPIV3Schema", "type")
		}
		ps = append(ps, checkPrinterColumns(v.AdditionalPrinterColumns, i)...)
	}
	if len(sp.Versions) > 0 && storage != 1 {
		bad(fmt.Sprintf("exactly one version must have storage: true, got %d", storage), "spec", "versions")
	}
	if len(sp.Versions) > 0 && served == 0 {
		bad("at least one version must have served: true", "spec", "versions")
	}
	return ps
}

var columnTypes = map[string]bool{"integer": true, "number": true, "string": true, "boolean": true, "date": true}

func checkPrinterColumns(cols []apiextensionsv1.CustomResourceColumnDefinition, version int) []fieldProblem {
	var ps []fieldProblem
	for j, c := range cols {
		at := func(f string) []cue.Selector {
			return sels("spec", "versions", version, "additionalPrinterColumns", j, f)
		}
		if c.Name == "" {
			ps = append(ps, fieldProblem{at("name"), msgMissing})
		}
		if !columnTypes[c.Type] {
			ps = append(ps, fieldProblem{at("type"), fmt.Sprintf("must be one of integer, number, string, boolean, date, got %q", c.Type)})
		}
		if err := jsonpath.New(c.Name).Parse("{" + c.JSONPath + "}"); c.JSONPath == "" || err != nil {
			ps = append(ps, fieldProblem{at("jsonPath"), fmt.Sprintf("must be a JSONPath like .spec.size, got %q", c.JSONPath)})
		}
	}
	return ps
}
