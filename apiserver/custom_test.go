package apiserver_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/keelson/keelson/store"
)

func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList", ShortNames: []string{"wd"}},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
					{Name: "Size", Type: "integer", JSONPath: ".spec.size"},
					{Name: "Color", Type: "string", JSONPath: ".spec.color"},
				}}},
		},
	}
}

var widgetsGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

func widgetObj(name, color string, size int64) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"size": size, "color": color}}}
	u.SetGroupVersionKind(widgetsGVR.GroupVersion().WithKind("Widget"))
	u.SetNamespace("default")
	u.SetName(name)
	u.SetLabels(map[string]string{"color": color})
	return u
}

func TestCustomResourcesServed(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	t.Cleanup(func() { store.UnregisterCustom("widgets.example.com") })
	if err := ts.st.Create(ctx, widgetCRD()); err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"red", "blue", "red"} {
		if err := ts.st.Create(ctx, widgetObj(fmt.Sprintf("w%d", i), c, int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	wantWidgetDiscovery(t, ts)

	dyn, err := dynamic.NewForConfig(ts.config("admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	widgets := dyn.Resource(widgetsGVR).Namespace("default")
	got, err := widgets.Get(ctx, "w1", metav1.GetOptions{})
	if size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); err != nil || size != 2 {
		t.Fatalf("get: %v %v", got, err)
	}
	red, err := widgets.List(ctx, metav1.ListOptions{LabelSelector: "color=red"})
	if err != nil || len(red.Items) != 2 {
		t.Fatalf("list color=red: %v %v", red, err)
	}
	page, err := widgets.List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil || len(page.Items) != 2 || page.GetContinue() == "" {
		t.Fatalf("first page: %v %v", page, err)
	}
	rest, err := widgets.List(ctx, metav1.ListOptions{Limit: 2, Continue: page.GetContinue()})
	if err != nil || len(rest.Items) != 1 || rest.Items[0].GetName() != "w2" {
		t.Fatalf("second page: %v %v", rest, err)
	}

	w, err := widgets.Watch(ctx, metav1.ListOptions{ResourceVersion: page.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := ts.st.Create(ctx, widgetObj("w3", "blue", 9)); err != nil {
		t.Fatal(err)
	}
	for ev := range w.ResultChan() {
		if u, ok := ev.Object.(*unstructured.Unstructured); ok && ev.Type == watch.Added && u.GetName() == "w3" {
			break
		}
	}

	wantWidgetTable(t, ts)
}

func wantWidgetDiscovery(t *testing.T, ts *testServer) {
	t.Helper()
	for _, aggregated := range []bool{true, false} {
		dc, err := discovery.NewDiscoveryClientForConfig(ts.config("admin-token"))
		if err != nil {
			t.Fatal(err)
		}
		dc.UseLegacyDiscovery = !aggregated
		l, err := dc.ServerResourcesForGroupVersion("example.com/v1")
		if err != nil || len(l.APIResources) != 1 || l.APIResources[0].Name != "widgets" || !l.APIResources[0].Namespaced || !slices.Equal(l.APIResources[0].ShortNames, []string{"wd"}) {
			t.Fatalf("aggregated=%v: discovery of example.com/v1: %+v %v", aggregated, l, err)
		}
		if _, err := dc.ServerResourcesForGroupVersion("apiextensions.k8s.io/v1"); err != nil {
			t.Fatalf("aggregated=%v: CRDs not served: %v", aggregated, err)
		}
	}
}

// wantWidgetTable reads the red widgets as a Table: NAME, the CRD's printer
// columns, AGE.
func wantWidgetTable(t *testing.T, ts *testServer) {
	t.Helper()
	ctx := t.Context()
	b, err := ts.client(t, "admin-token").CoreV1().RESTClient().Get().AbsPath("/apis/example.com/v1/namespaces/default/widgets").
		Param("labelSelector", "color=red").SetHeader("Accept", tableAccept).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tbl metav1.Table
	if err := json.Unmarshal(b, &tbl); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, d := range tbl.ColumnDefinitions {
		cols = append(cols, d.Name)
	}
	if !slices.Equal(cols, []string{"Name", "Size", "Color", "Age"}) || len(tbl.Rows) != 2 {
		t.Fatalf("table columns %v, %d rows: %s", cols, len(tbl.Rows), b)
	}
	if c := tbl.Rows[1].Cells; c[0] != "w2" || c[1] != float64(3) || c[2] != "red" {
		t.Errorf("row of w2: %v", c)
	}
}
