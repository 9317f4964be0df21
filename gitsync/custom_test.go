package gitsync

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/store"
)

const crdWidgets = `apiVersion: apiextensions.k8s.io/v1
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
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
`

func widgetDoc(name string, size string) string {
	return "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: " + name + "\nspec:\n  size: " + size + "\n"
}

func getWidget(t *testing.T, st *store.Store, name string) (*unstructured.Unstructured, error) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"})
	return u, st.Get(t.Context(), "default", name, u)
}

// crScene is a repository with two syncs: apps holds a CRD and two of its
// objects, team holds one more object of the CRD and a ConfigMap.
type crScene struct {
	r          *testRepo
	apps, team *Syncer
	src        Source
}

// TestCustomResourcesSync walks a CRD and its objects through a sync: landing
// together, a later revision of objects only, bad objects, and pruning.
func TestCustomResourcesSync(t *testing.T) {
	t.Cleanup(func() { store.UnregisterCustom("widgets.example.com") })
	sc := &crScene{r: newRepo(t), apps: newSyncer(t, "apps")}
	sc.apps.Path = "apps"
	sc.src = NewLocalGit(sc.r.dir, "main")
	sc.team = &Syncer{Name: "team", Store: sc.apps.Store, Schema: sc.apps.Schema, Prune: true, Path: "team"}
	crLandAndUpdate(t, sc)
	crRefused(t, sc)
	crPrune(t, sc)
}

func crLandAndUpdate(t *testing.T, sc *crScene) {
	sc.r.commit(map[string]string{
		"apps/crd.yaml": crdWidgets,
		"apps/a.yaml":   widgetDoc("a", "1"),
		"apps/b.yaml":   widgetDoc("b", "2"),
	})
	res := mustApply(t, sc.apps, sc.src)
	wantCounts(t, res, 3, 0, 0, 0)
	if res.Transactions != 1 || !strings.HasPrefix(res.Changes[0].Object, "customresourcedefinitions") {
		t.Fatalf("want the CRD first, in one transaction: %d transactions, first %s", res.Transactions, res.Changes[0].Object)
	}
	b, err := getWidget(t, sc.apps.Store, "b")
	if err != nil || b.GetLabels()[LabelSource] != "apps" || b.GetAnnotations()[AnnotationOrigin] != "apps/b.yaml:1" {
		t.Fatalf("widget b: %v %v", b, err)
	}
	// Another Syncer remembers nothing, so it compares every object.
	again := &Syncer{Name: "apps", Store: sc.apps.Store, Schema: sc.apps.Schema, Prune: true, Path: "apps"}
	wantCounts(t, mustApply(t, again, sc.src), 0, 0, 0, 3)
	sc.r.commit(map[string]string{"apps/b.yaml": widgetDoc("b", "5")})
	wantCounts(t, mustApply(t, again, sc.src), 0, 1, 0, 2)
	b2, err := getWidget(t, sc.apps.Store, "b")
	if size, _, _ := unstructured.NestedInt64(b2.Object, "spec", "size"); err != nil || size != 5 || b2.GetUID() != b.GetUID() || b2.GetGeneration() != 2 {
		t.Fatalf("widget b after its update: %v %v", b2.Object, err)
	}
	// Another sync holds only objects: they validate against the stored CRD.
	sc.r.commit(map[string]string{"team/c.yaml": widgetDoc("c", "3"), "team/cm.yaml": configMap("team", "x")})
	wantCounts(t, mustApply(t, sc.team, sc.src), 2, 0, 0, 0)
	if _, err := getWidget(t, sc.apps.Store, "c"); err != nil {
		t.Fatal(err)
	}
}

func crRefused(t *testing.T, sc *crScene) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"against the schema", map[string]string{"team/d.yaml": widgetDoc("d", "0")}, "team/d.yaml:6:9: Widget default/d: spec.size: must be >=1, got 0"},
		{"no CRD", map[string]string{"team/d.yaml": strings.Replace(widgetDoc("d", "1"), "Widget", "Gizmo", 1)},
			"team/d.yaml:2:1: Gizmo d: kind: unsupported kind Gizmo (apiVersion example.com/v1): no CustomResourceDefinition for example.com/Gizmo in this revision or the cluster"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc.r.commit(tc.files)
			res, err := syncNow(t, sc.team, sc.src)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(res.Errors.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
			if _, err := getWidget(t, sc.apps.Store, "d"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("widget d stored: %v", err)
			}
			sc.r.commit(map[string]string{"team/d.yaml": ""})
		})
	}
}

func crPrune(t *testing.T, sc *crScene) {
	sc.r.commit(map[string]string{"apps/crd.yaml": ""})
	_, err := syncNow(t, sc.apps, sc.src)
	if want := "apps/a.yaml:1: Widget default/a: CustomResourceDefinition widgets.example.com (from apps/crd.yaml:1) is no longer in Git"; !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %q", err, want)
	}
	sc.r.commit(map[string]string{"apps/a.yaml": "", "apps/b.yaml": "", "apps/keep.yaml": configMap("keep", "x")})
	_, err = syncNow(t, sc.apps, sc.src)
	if want := "apps/crd.yaml: CustomResourceDefinition widgets.example.com: is no longer in Git and would be deleted, but 1 objects of it that this sync does not own stay in the cluster (Widget default/c of sync team)"; !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %q", err, want)
	}
	sc.r.commit(map[string]string{"team/c.yaml": ""})
	wantCounts(t, mustApply(t, sc.team, sc.src), 0, 0, 1, 1)
	res := mustApply(t, sc.apps, sc.src)
	wantCounts(t, res, 1, 0, 3, 0)
	var deleted []string
	for _, c := range res.Changes {
		if c.Action == Delete {
			deleted = append(deleted, strings.Fields(c.Object)[0])
		}
	}
	if strings.Join(deleted, " ") != "widgets.example.com widgets.example.com customresourcedefinitions.apiextensions.k8s.io" {
		t.Fatalf("deletions in order %v: the objects go before their CRD", deleted)
	}
	if _, err := store.ResourceByName("widgets.example.com"); !errors.Is(err, store.ErrUnknownKind) {
		t.Fatalf("the CRD's resource stays registered: %v", err)
	}
}
