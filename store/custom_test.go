package store_test

import (
	"errors"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func gadgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1beta1", Served: true},
				{Name: "v1", Served: true, Storage: true},
			},
		},
	}
}

func gadget(version, name string, size int64) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"size": size}}}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "example.com", Version: version, Kind: "Gadget"})
	u.SetNamespace("default")
	u.SetName(name)
	return u
}

func TestCustomResources(t *testing.T) {
	s := etcdtest.NewStore(t)
	ctx := t.Context()
	t.Cleanup(func() { store.UnregisterCustom("gadgets.example.com") })
	gvk := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}
	if _, err := store.ResourceFor(gvk); !errors.Is(err, store.ErrUnknownKind) {
		t.Fatalf("before the CRD: %v", err)
	}
	if err := s.Create(ctx, gadgetCRD()); err != nil {
		t.Fatal(err)
	}
	r, err := store.ResourceFor(gvk)
	if err != nil || r.GroupResource() != "gadgets.example.com" || !r.Namespaced || !store.IsCustom(r) {
		t.Fatalf("after the CRD: %v %v", r, err)
	}
	w, err := s.Watch(ctx, r, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// An object of another served version is stored under the storage version.
	if err := s.Create(ctx, gadget("v1beta1", "a", 2)); err != nil {
		t.Fatal(err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(gvk)
	if err := s.Get(ctx, "default", "a", got); err != nil {
		t.Fatal(err)
	}
	if size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); size != 2 || got.GetAPIVersion() != "example.com/v1" || got.GetUID() == "" {
		t.Errorf("got %v", got.Object)
	}
	if ev := <-w.ResultChan(); ev.Type != watch.Added || ev.Object.(*unstructured.Unstructured).GetName() != "a" {
		t.Errorf("watch event %v %v", ev.Type, ev.Object)
	}
	l, err := s.List(ctx, r, store.ListOptions{Namespace: "default"})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("list: %v %v", l, err)
	}

	store.UnregisterCustom("gadgets.example.com")
	if crds, err := s.LoadCustomResources(ctx); err != nil || len(crds) != 1 || crds[0].Name != "gadgets.example.com" {
		t.Fatalf("load: %v %v", crds, err)
	}
	if _, err := store.ResourceByName("gadgets.example.com"); err != nil {
		t.Fatalf("not registered again from etcd: %v", err)
	}
	crdRes, err := store.ResourceByName("customresourcedefinitions.apiextensions.k8s.io")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, crdRes, "", "gadgets.example.com", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ResourceFor(gvk); !errors.Is(err, store.ErrUnknownKind) {
		t.Fatalf("after deleting the CRD: %v", err)
	}
}

func TestCustomResourceCannotShadowBuiltin(t *testing.T) {
	crd := gadgetCRD()
	crd.Name, crd.Spec.Group, crd.Spec.Names.Plural, crd.Spec.Names.Kind = "deployments.apps", "apps", "deployments", "Deployment"
	if err := store.RegisterCustom(crd); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("got %v", err)
	}
}

func TestCustomResourceDefinitionAndObjectsInOneTxn(t *testing.T) {
	s := etcdtest.NewStore(t)
	ctx := t.Context()
	t.Cleanup(func() { store.UnregisterCustom("gadgets.example.com") })
	// A transaction that fails leaves the CRD unregistered.
	cm := gadget("v1", "taken", 1)
	if err := s.Txn(ctx, store.CreateOp(gadgetCRD()), store.CreateOp(cm), store.CreateOp(gadget("v1", "taken", 2))); err == nil {
		t.Fatal("a transaction writing one key twice succeeded")
	}
	if _, err := store.ResourceByName("gadgets.example.com"); !errors.Is(err, store.ErrUnknownKind) {
		t.Fatalf("after a failed transaction: %v", err)
	}
	if err := s.Txn(ctx, store.CreateOp(gadgetCRD()), store.CreateOp(gadget("v1", "a", 1)), store.CreateOp(gadget("v1", "b", 2))); err != nil {
		t.Fatal(err)
	}
	r, err := store.ResourceByName("gadgets.example.com")
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.List(ctx, r, store.ListOptions{})
	if err != nil || len(l.Items) != 2 {
		t.Fatalf("list: %v %v", l, err)
	}
}
