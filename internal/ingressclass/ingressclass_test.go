package ingressclass

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestServed(t *testing.T) {
	classes := map[string]*networkingv1.IngressClass{
		"internal": {ObjectMeta: metav1.ObjectMeta{Name: "internal"}, Spec: networkingv1.IngressClassSpec{Controller: Controller}},
		"nginx":    {ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
	}
	lookup := Map(classes)
	otherDefault := Map{"nginx": {ObjectMeta: metav1.ObjectMeta{Name: "nginx", Annotations: map[string]string{AnnotationDefault: "true"}},
		Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}}
	bothDefault := Map{"nginx": otherDefault["nginx"], "keelson": Object()}
	ing := func(class *string, annotation string) *networkingv1.Ingress {
		i := &networkingv1.Ingress{Spec: networkingv1.IngressSpec{IngressClassName: class}}
		if annotation != "" {
			i.Annotations = map[string]string{AnnotationClass: annotation}
		}
		return i
	}
	tests := []struct {
		name   string
		ing    *networkingv1.Ingress
		lookup Classes
		want   bool
	}{
		{"no class: keelson's is the default", ing(nil, ""), lookup, true},
		{"keelson's class", ing(ptr.To("keelson"), ""), nil, true},
		{"keelson's class by the old annotation", ing(nil, "keelson"), nil, true},
		{"a class of keelson's controller", ing(ptr.To("internal"), ""), lookup, true},
		{"a class of keelson's controller, no lookup", ing(ptr.To("internal"), ""), nil, false},
		{"another controller's class", ing(ptr.To("nginx"), ""), lookup, false},
		{"another class by the annotation", ing(nil, "nginx"), lookup, false},
		{"the field before the annotation", ing(ptr.To("keelson"), "nginx"), lookup, true},
		{"a class that does not exist", ing(ptr.To("missing"), ""), lookup, false},
		{"no class while another controller's class is the default", ing(nil, ""), otherDefault, false},
		{"keelson's class still served then", ing(ptr.To("keelson"), ""), otherDefault, true},
		{"no class while keelson's is a default too", ing(nil, ""), bothDefault, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Served(tt.ing, tt.lookup); got != tt.want {
				t.Errorf("Served = %v, want %v", got, tt.want)
			}
		})
	}
	if o := Object(); o.Name != Name || o.Spec.Controller != Controller || o.Annotations[AnnotationDefault] != "true" {
		t.Errorf("Object() = %+v, want keelson's default class", o)
	}
}
