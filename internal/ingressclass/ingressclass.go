package ingressclass

import (
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/tools/cache"
)

const (
	// Name is keelson's IngressClass, made by the control plane.
	Name = "keelson"
	// Controller is the spec.controller of IngressClasses keelson serves.
	Controller = "keelson.dev/ingress"
	// AnnotationClass is the annotation that named an Ingress's class
	// before spec.ingressClassName; Kubernetes still honours it.
	AnnotationClass = "kubernetes.io/ingress.class"
	// AnnotationDefault marks the cluster's default IngressClass.
	AnnotationDefault = "ingressclass.kubernetes.io/is-default-class"
	// AnnotationNodeProxy is on the Node of an agent whose ingress proxy
	// listens; its value says where, e.g. "http=:80,https=:443". The
	// addresses of Ready nodes that carry it are the Ingresses' status.
	AnnotationNodeProxy = "keelson.dev/ingress-proxy"
)

// Classes are the cluster's IngressClasses.
type Classes interface {
	// Get finds a class by name; ok is false when there is none.
	Get(name string) (class *networkingv1.IngressClass, ok bool)
	// List returns every class.
	List() []*networkingv1.IngressClass
}

// FromStore reads the classes of an informer's store.
func FromStore(s cache.Store) Classes { return storeClasses{s} }

type storeClasses struct{ s cache.Store }

func (c storeClasses) Get(name string) (*networkingv1.IngressClass, bool) {
	o, ok, err := c.s.GetByKey(name)
	if err != nil || !ok {
		return nil, false
	}
	ic, ok := o.(*networkingv1.IngressClass)
	return ic, ok
}

func (c storeClasses) List() []*networkingv1.IngressClass {
	var out []*networkingv1.IngressClass
	for _, o := range c.s.List() {
		if ic, ok := o.(*networkingv1.IngressClass); ok {
			out = append(out, ic)
		}
	}
	return out
}

// Map is Classes of a map by name, for a caller that holds the classes
// itself (a revision's objects, a test).
type Map map[string]*networkingv1.IngressClass

// Get finds a class by name.
func (m Map) Get(name string) (*networkingv1.IngressClass, bool) {
	c, ok := m[name]
	return c, ok
}

// List returns every class, in no order.
func (m Map) List() []*networkingv1.IngressClass {
	out := make([]*networkingv1.IngressClass, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	return out
}

// ClassName is the class an Ingress names, "" when it names none:
// spec.ingressClassName, else the annotation.
func ClassName(ing *networkingv1.Ingress) string {
	if c := ing.Spec.IngressClassName; c != nil && *c != "" {
		return *c
	}
	return ing.Annotations[AnnotationClass]
}

// Served reports whether keelson's ingress proxy serves ing: it names
// keelson's class, or an IngressClass whose controller is keelson's, or no
// class while keelson's is the default (a class of keelson's controller is
// marked default, or none is: another controller's default class takes
// the Ingresses that name none, and two controllers must not fight over
// them). classes may be nil: then only the names say.
func Served(ing *networkingv1.Ingress, classes Classes) bool {
	name := ClassName(ing)
	switch {
	case name == Name:
		return true
	case classes == nil:
		return name == ""
	case name == "":
		return keelsonIsDefault(classes.List())
	}
	c, ok := classes.Get(name)
	return ok && c.Spec.Controller == Controller
}

// keelsonIsDefault reports whether Ingresses that name no class are
// keelson's: no class is marked default, or one of keelson's controller is.
func keelsonIsDefault(classes []*networkingv1.IngressClass) bool {
	others := false
	for _, c := range classes {
		if c.DeletionTimestamp != nil || c.Annotations[AnnotationDefault] != "true" {
			continue
		}
		if c.Spec.Controller == Controller {
			return true
		}
		others = true
	}
	return !others
}

// Object is keelson's IngressClass as the control plane makes it: the
// cluster's default.
func Object() *networkingv1.IngressClass {
	c := &networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Controller: Controller}}
	c.APIVersion, c.Kind = "networking.k8s.io/v1", "IngressClass"
	c.Name = Name
	c.Annotations = map[string]string{AnnotationDefault: "true"}
	return c
}
