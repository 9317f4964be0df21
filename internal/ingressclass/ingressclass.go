package ingressclass

import (
	networkingv1 "k8s.io/api/networking/v1"
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

// Lookup finds an IngressClass by name; ok is false when there is none.
type Lookup func(name string) (class *networkingv1.IngressClass, ok bool)

// ClassName is the class an Ingress names, "" when it names none:
// spec.ingressClassName, else the annotation.
func ClassName(ing *networkingv1.Ingress) string {
	if c := ing.Spec.IngressClassName; c != nil && *c != "" {
		return *c
	}
	return ing.Annotations[AnnotationClass]
}

// Served reports whether keelson's ingress proxy serves ing: it names no
// class (keelson's is the default), keelson's own, or an IngressClass whose
// controller is keelson's. lookup may be nil.
func Served(ing *networkingv1.Ingress, lookup Lookup) bool {
	name := ClassName(ing)
	if name == "" || name == Name {
		return true
	}
	if lookup == nil {
		return false
	}
	c, ok := lookup(name)
	return ok && c.Spec.Controller == Controller
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
