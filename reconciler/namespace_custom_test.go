package reconciler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/store"
)

// A namespace's custom resources go with it, as in Kubernetes.
func TestNamespaceDeleteCustomResources(t *testing.T) {
	env := newTestEnv(t)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.ns-test.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "ns-test.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names:    apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true}},
		},
	}
	t.Cleanup(func() { store.UnregisterCustom(crd.Name) })
	if err := env.st.Create(t.Context(), crd); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "crs"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}}
	if err := env.st.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	w := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"size": int64(1)}}}
	w.SetGroupVersionKind(schema.GroupVersionKind{Group: "ns-test.example.com", Version: "v1", Kind: "Widget"})
	w.SetNamespace("crs")
	w.SetName("one")
	if err := env.st.Create(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	if err := Delete(t.Context(), env.st, ns, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the namespace and its widget gone", func() (bool, string) {
		if err := env.st.Get(t.Context(), "", "crs", &corev1.Namespace{}); err == nil {
			return false, "namespace still there"
		}
		l, err := env.st.List(t.Context(), store.MustResource("widgets.ns-test.example.com"), store.ListOptions{Namespace: "crs"})
		if err != nil {
			return false, err.Error()
		}
		return len(l.Items) == 0, "widgets left"
	})
}
