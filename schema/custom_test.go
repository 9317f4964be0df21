package schema

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, enum: [red, blue], default: red}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

func widget(name, spec string) string {
	return "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: " + name + "\nspec:\n" + spec
}

func loadFS(t *testing.T, files map[string]string, opts ...Option) ([]*Object, ErrorList) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	objs, err := testSchema(t).Load(t.Context(), fsys, nil, opts...)
	var errs ErrorList
	if err != nil && !errors.As(err, &errs) {
		t.Fatalf("Load: %v", err)
	}
	return objs, errs
}

func TestCustomResourcesValidateAgainstTheirCRD(t *testing.T) {
	objs, errs := loadFS(t, map[string]string{
		"crd.yaml":  widgetCRD,
		"a.yaml":    widget("a", "  size: 2\n  extra: {anything: [1, 2]}\n"),
		"b.yaml":    widget("b", "  size: 5\n  color: blue\n"),
		"list.yaml": "apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(widget("c", "  size: 1\n"), "\n", "\n  "),
	})
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	got := map[string]*Object{}
	for _, o := range objs {
		got[o.Kind+"/"+o.Name] = o
	}
	if _, ok := got["CustomResourceDefinition/widgets.example.com"].Object.(*apiextensionsv1.CustomResourceDefinition); !ok {
		t.Fatalf("the CRD is not decoded into its type: %v", names(objs))
	}
	for name, wantColor := range map[string]string{"a": "red", "b": "blue", "c": "red"} {
		o := got["Widget/"+name]
		if o == nil {
			t.Fatalf("Widget %s missing: %s", name, names(objs))
		}
		u, ok := o.Object.(*unstructured.Unstructured)
		if !ok || o.Namespace != "default" || u.GetNamespace() != "default" {
			t.Fatalf("Widget %s: %T namespace %q", name, o.Object, o.Namespace)
		}
		if c, _, _ := unstructured.NestedString(u.Object, "spec", "color"); c != wantColor {
			t.Errorf("Widget %s color %q, want %q (the schema's default fills a missing field)", name, c, wantColor)
		}
	}
	if got["Widget/a"].Line != 1 || got["Widget/c"].File != "list.yaml" {
		t.Errorf("positions: a line %d, c file %s", got["Widget/a"].Line, got["Widget/c"].File)
	}
}

func TestCustomResourceErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"out of bounds", map[string]string{"crd.yaml": widgetCRD, "w.yaml": widget("w", "  size: 0\n")},
			[]string{"w.yaml:6:9: Widget default/w: spec.size:"}},
		{"not in the enum", map[string]string{"crd.yaml": widgetCRD, "w.yaml": widget("w", "  size: 1\n  color: green\n")},
			[]string{"w.yaml:7:10: Widget default/w: spec.color:"}},
		{"unknown field", map[string]string{"crd.yaml": widgetCRD, "w.yaml": widget("w", "  size: 1\n  colour: red\n")},
			[]string{"w.yaml:7:3: Widget default/w: spec.colour: field not allowed"}},
		{"required field", map[string]string{"crd.yaml": widgetCRD, "w.yaml": widget("w", "  color: red\n")},
			[]string{"w.yaml:", "spec.size: required field is missing"}},
		{"bad name", map[string]string{"crd.yaml": widgetCRD, "w.yaml": widget("W_1", "  size: 1\n")},
			[]string{"w.yaml:4:3: Widget default/W_1: metadata.name: \"W_1\" is not a valid name"}},
		{"bad label", map[string]string{"crd.yaml": widgetCRD, "w.yaml": strings.Replace(widget("w", "  size: 1\n"), "name: w", "name: w\n  labels: {tier: -x-}", 1)},
			[]string{"w.yaml:5:12: Widget default/w: metadata.labels.tier: label tier=\"-x-\""}},
		{"no CRD", map[string]string{"w.yaml": widget("w", "  size: 1\n")},
			[]string{"w.yaml:2:1: Widget w: kind: unsupported kind Widget (apiVersion example.com/v1): no CustomResourceDefinition for example.com/Widget in this revision or the cluster"}},
		{"built-in kind, wrong version", map[string]string{"d.yaml": "apiVersion: v2\nkind: ConfigMap\nmetadata: {name: x}\n"},
			[]string{"ConfigMap is supported as apiVersion v1, not v2"}},
		{"cluster-scoped with a namespace", map[string]string{
			"crd.yaml": strings.Replace(widgetCRD, "Namespaced", "Cluster", 1),
			"w.yaml":   strings.Replace(widget("w", "  size: 1\n"), "name: w", "name: w\n  namespace: x", 1)},
			[]string{"w.yaml:5:3: Widget x/w: metadata.namespace: Widget is cluster-scoped"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, errs := loadFS(t, tc.files)
			for _, o := range objs {
				if o.Kind != CRDKind {
					t.Errorf("object %s/%s accepted", o.Kind, o.Name)
				}
			}
			if errs == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(errs.Error(), w) {
					t.Errorf("errors\n%v\nlack %q", errs, w)
				}
			}
		})
	}
}

func TestCustomResourceOfAClusterCRD(t *testing.T) {
	crdObjs, errs := loadFS(t, map[string]string{"crd.yaml": widgetCRD})
	if len(errs) > 0 || len(crdObjs) != 1 {
		t.Fatalf("CRD: %v %v", names(crdObjs), errs)
	}
	crd := crdObjs[0].Object.(*apiextensionsv1.CustomResourceDefinition)
	files := map[string]string{"w.yaml": widget("w", "  size: 3\n")}
	objs, errs := loadFS(t, files, WithCustomResources(crd))
	if len(errs) > 0 || len(objs) != 1 || objs[0].Name != "w" {
		t.Fatalf("with the cluster's CRD: %v %v", names(objs), errs)
	}
	if _, errs := loadFS(t, files); errs == nil {
		t.Fatal("without the cluster's CRD, the Widget was accepted")
	}
}

func TestCRDChecks(t *testing.T) {
	tests := []struct{ name, from, to, want string }{
		{"name", "name: widgets.example.com", "name: widget.example.com", `crd.yaml:4:3: CustomResourceDefinition widget.example.com: metadata.name: must be <spec.names.plural>.<spec.group>, here "widgets.example.com"`},
		{"two storage versions", "  - name: v1\n", "  - {name: v2, served: false, storage: true}\n  - name: v1\n", "spec.versions: exactly one version must have storage: true, got 2"},
		{"no schema", "    schema:\n      openAPIV3Schema:\n", "    x:\n      y:\n", "spec.versions[0].x: field not allowed"},
		{"served without schema", "  - name: v1\n", "  - {name: v0, served: true, storage: false}\n  - name: v1\n", "spec.versions[0].schema: a served version needs schema.openAPIV3Schema"},
		{"scope", "scope: Namespaced", "scope: Everywhere", `spec.scope: must be Namespaced or Cluster, got "Everywhere"`},
		{"group", "group: example.com", "group: example", "spec.group: must be a DNS subdomain with at least one dot"},
		{"kind", "kind: Widget}", "kind: widget}", `spec.names.kind: must start with an upper-case letter`},
		{"printer column", "jsonPath: .spec.size", "jsonPath: '.spec[size'", "spec.versions[0].additionalPrinterColumns[0].jsonPath: must be a JSONPath"},
		{"bad schema", "minimum: 1}", "minimum: 1}\n              bad: {type: object, additionalProperties: false}", "spec.versions[0].schema.openAPIV3Schema: openAPIV3Schema:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(widgetCRD, tc.from, tc.to, 1)
			if doc == widgetCRD {
				t.Fatalf("%q not in the CRD", tc.from)
			}
			objs, errs := loadFS(t, map[string]string{"crd.yaml": doc})
			if len(objs) > 0 || !strings.Contains(errs.Error(), tc.want) {
				t.Errorf("objects %s, errors\n%v\nwant %q", names(objs), errs, tc.want)
			}
		})
	}
}

// TestCustomResourceValidatedOncePerContent: a file the Cache answers keeps
// its custom resource's outcome per CRD, so the next Load shares it (with
// WithShared) instead of validating the object again; a changed CRD
// validates it afresh.
func TestCustomResourceValidatedOncePerContent(t *testing.T) {
	cache := NewCache(100)
	files := map[string]string{"crd.yaml": widgetCRD, "w.yaml": widget("w", "  size: 2\n")}
	widgetOf := func(files map[string]string, opts ...Option) *Object {
		t.Helper()
		objs, errs := loadFS(t, files, append(opts, WithCache(cache))...)
		for _, o := range objs {
			if o.Kind == "Widget" {
				return o
			}
		}
		t.Fatalf("no widget: %v %v", names(objs), errs)
		return nil
	}
	first := widgetOf(files, WithShared())
	if again := widgetOf(files, WithShared()); again.Object != first.Object {
		t.Error("the second Load validated the unchanged widget again")
	}
	if copied := widgetOf(files); copied.Object == first.Object {
		t.Error("without WithShared, the Load returned the memo's own object")
	}
	files["crd.yaml"] = strings.Replace(widgetCRD, "minimum: 1", "minimum: 3", 1)
	if _, errs := loadFS(t, files, WithCache(cache)); !strings.Contains(errs.Error(), "spec.size: must be >=3, got 2") {
		t.Errorf("a changed CRD did not validate the widget afresh: %v", errs)
	}
}
