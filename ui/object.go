package ui

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/health"
	"github.com/keelson/keelson/store"
)

// objectLink is the page of any object the view shows: its own page for
// a pod, else the object page.
func objectLink(res store.Resource, ns, name string) string {
	if res.GroupResource() == "pods" {
		return podLink(ns, name)
	}
	if !res.Namespaced || ns == "" {
		return "/ui/objects/" + url.PathEscape(res.GroupResource()) + "/" + url.PathEscape(name)
	}
	return "/ui/objects/" + url.PathEscape(res.GroupResource()) + "/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
}

type objectPageData struct {
	Kind, Namespace, Name string
	Health, HealthMsg     string
	Source, SourceLink    string
	// Origin is the manifest's file:line in Git, linked to the file at
	// the revision that wrote the object when the Git host has pages.
	Origin   fileError
	Revision string
	Owners   []ownerView
	// Conditions are status.conditions, whatever the kind.
	Conditions []conditionView
	Events     events
	// YAML is the object as the API serves it, less managedFields.
	YAML string
}

type ownerView struct {
	Kind, Name, Link string
}

type conditionView struct {
	Type, Status, Reason, Message string
	Since                         *metav1.Time
}

// objectPage shows one object: its health, where it comes from in Git,
// what owns it, its conditions and events, and the object itself. The
// view shows no Secret.
func (v *View) objectPage(w http.ResponseWriter, r *request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	p := &page{Title: r.PathValue("resource") + " " + name, Nav: "sources"}
	res, err := store.ResourceByName(r.PathValue("resource"))
	if err != nil || res.GroupResource() == "secrets" || !validName(ns, name) || res.Namespaced != (ns != "") {
		v.notFound(w, r, "object.html", p)
		return
	}
	if res.GroupResource() == "pods" {
		http.Redirect(w, r.Request, podLink(ns, name), http.StatusFound)
		return
	}
	obj, err := r.api.object(r.Context(), res, ns, name)
	if err != nil {
		v.failed(w, r, "object.html", p, err)
		return
	}
	o, ok := obj.(store.Object)
	if !ok {
		v.failed(w, r, "object.html", p, errors.New("the API answered something that is no object"))
		return
	}
	d, err := objectData(res, o)
	if err != nil {
		v.failed(w, r, "object.html", p, err)
		return
	}
	watches := []watch{watchOf(apiPath(res, ns), url.Values{"fieldSelector": {"metadata.name=" + name}}, o.GetResourceVersion())}
	if d.Source != "" {
		d.Origin = v.origin(r, o, d.Source)
	}
	if ns != "" {
		evs, evWatch, err := readEvents(r, ns, url.Values{"fieldSelector": {"involvedObject.name=" + name}}, o.GetUID())
		if err != nil {
			v.failed(w, r, "object.html", p, err)
			return
		}
		d.Events = evs
		if evWatch != nil {
			watches = append(watches, *evWatch)
		}
	}
	p.Title = d.Kind + " " + name
	p.Data, p.Live = d, liveURL(watches...)
	v.render(w, r, "object.html", p)
}

// objectData is what the page shows of o.
func objectData(res store.Resource, o store.Object) (*objectPageData, error) {
	h := health.OfKind(res.GVK.GroupKind(), o)
	d := &objectPageData{Kind: res.GVK.Kind, Namespace: o.GetNamespace(), Name: o.GetName(),
		Health: string(h.Status), HealthMsg: h.Message,
		Source: o.GetLabels()[keelsonv1alpha1.LabelSource], Revision: o.GetAnnotations()[keelsonv1alpha1.AnnotationRevision]}
	if d.Source != "" {
		d.SourceLink = "/ui/sources/" + url.PathEscape(d.Source)
	}
	for _, ref := range o.GetOwnerReferences() {
		ov := ownerView{Kind: ref.Kind, Name: ref.Name}
		if or, err := store.ResourceFor(schemaGVK(ref.APIVersion, ref.Kind)); err == nil {
			ov.Link = objectLink(or, o.GetNamespace(), ref.Name)
		}
		d.Owners = append(d.Owners, ov)
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: raw}
	u.SetManagedFields(nil)
	u.SetAPIVersion(res.GVK.GroupVersion().String())
	u.SetKind(res.GVK.Kind)
	d.Conditions = conditionsOf(u)
	b, err := json.Marshal(u.Object)
	if err == nil {
		b, err = yaml.JSONToYAML(b)
	}
	if err != nil {
		return nil, err
	}
	d.YAML = string(b)
	return d, nil
}

// conditionsOf reads status.conditions, in the shape every kind shares.
func conditionsOf(u *unstructured.Unstructured) []conditionView {
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var out []conditionView
	for _, c := range list {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		cv := conditionView{Type: str("type"), Status: str("status"), Reason: str("reason"), Message: str("message")}
		if t := str("lastTransitionTime"); t != "" {
			var mt metav1.Time
			if mt.UnmarshalQueryParameter(t) == nil {
				cv.Since = &mt
			}
		}
		out = append(out, cv)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// origin is the object's manifest in Git, linked when its source's host
// has pages.
func (v *View) origin(r *request, o store.Object, source string) fileError {
	at := o.GetAnnotations()[keelsonv1alpha1.AnnotationOrigin]
	if at == "" {
		return fileError{}
	}
	file, line, _ := strings.Cut(at, ":")
	e := fileError{File: file, Line: line}
	var s keelsonv1alpha1.Sync
	if err := r.api.getInto(r.Context(), objectPath(syncsRes, "", source), nil, &s); err != nil {
		return e
	}
	if f, ok := forgeOf(s.Spec.URL); ok {
		if rev := o.GetAnnotations()[keelsonv1alpha1.AnnotationRevision]; rev != "" {
			e.URL = f.fileURL(rev, file, line)
		}
	}
	return e
}

func schemaGVK(apiVersion, kind string) schema.GroupVersionKind {
	gv, _ := schema.ParseGroupVersion(apiVersion)
	return gv.WithKind(kind)
}
