package ui

import (
	"context"
	"fmt"
	"net/url"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/keelson/keelson/store"
)

// apiPath is the path of res's collection in namespace ns ("" for all
// namespaces, or a cluster-scoped kind). Names are as they are: the client
// escapes the path.
func apiPath(res store.Resource, ns string) string {
	p := "/apis/" + res.GVK.Group + "/" + res.GVK.Version
	if res.GVK.Group == "" {
		p = "/api/" + res.GVK.Version
	}
	if res.Namespaced && ns != "" {
		p += "/namespaces/" + ns
	}
	return p + "/" + res.Plural
}

// objectPath is the path of one object.
func objectPath(res store.Resource, ns, name string) string {
	return apiPath(res, ns) + "/" + name
}

// validName says whether ns (when not "") and name could name an object:
// anything else, "..", a slash, is no object's, and the view asks the API
// for no other path.
func validName(ns, name string) bool {
	return (ns == "" || len(validation.IsDNS1123Label(ns)) == 0) && len(validation.IsDNS1123Subdomain(name)) == 0
}

// listed is one list read from the API: its objects, typed when the kind is
// built in, and the resourceVersion a watch of it starts from.
type listed struct {
	items []store.Object
	rv    string
}

var decoder = scheme.Codecs.UniversalDeserializer()

// list reads res's objects in ns with the query q (selectors).
func (c *client) list(ctx context.Context, res store.Resource, ns string, q url.Values) (listed, error) {
	b, err := c.getRaw(ctx, apiPath(res, ns), q)
	if err != nil {
		return listed{}, err
	}
	obj, _, err := decoder.Decode(b, nil, nil)
	if err != nil {
		// A custom resource: the scheme does not know it.
		var u unstructured.UnstructuredList
		if err := u.UnmarshalJSON(b); err != nil {
			return listed{}, fmt.Errorf("decode %s: %w", res, err)
		}
		out := listed{rv: u.GetResourceVersion(), items: make([]store.Object, len(u.Items))}
		for i := range u.Items {
			out.items[i] = &u.Items[i]
		}
		return out, nil
	}
	items, err := meta.ExtractList(obj)
	if err != nil {
		return listed{}, fmt.Errorf("decode %s: %w", res, err)
	}
	out := listed{items: make([]store.Object, 0, len(items))}
	if lm, err := meta.ListAccessor(obj); err == nil {
		out.rv = lm.GetResourceVersion()
	}
	for _, it := range items {
		if o, ok := it.(store.Object); ok {
			out.items = append(out.items, o)
		}
	}
	return out, nil
}

// object reads one object of res.
func (c *client) object(ctx context.Context, res store.Resource, ns, name string) (runtime.Object, error) {
	b, err := c.getRaw(ctx, objectPath(res, ns, name), nil)
	if err != nil {
		return nil, err
	}
	obj, _, err := decoder.Decode(b, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", res, name, err)
	}
	return obj, nil
}
