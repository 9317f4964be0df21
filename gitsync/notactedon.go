package gitsync

import (
	"fmt"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/health"
	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/internal/support"
	"github.com/keelson/keelson/store"
)

// maxNotActedOnNamed bounds the objects a Sync's Ready message names; the
// Sync's health lists them all (up to its own bound).
const maxNotActedOnNamed = 5

// notActedOn names the objects of an applied revision whose kind keelson
// stores but does not act on yet, as NotActedOn names them.
func notActedOn(res *Result) []string {
	if res == nil {
		return nil
	}
	return NotActedOn(inventoryOf(res))
}

// NotActedOn names the objects of a Sync's inventory whose kind keelson
// stores but does not act on yet, "Kind namespace/name", sorted: what the
// Sync's Ready message and keelson status name.
func NotActedOn(inv []keelsonv1alpha1.ObjectRef) []string {
	var out []string
	for _, o := range inv {
		gv, err := k8sschema.ParseGroupVersion(o.APIVersion)
		if err != nil {
			continue
		}
		if _, ok := support.NotActedOn(gv.WithKind(o.Kind).GroupKind()); ok {
			out = append(out, objectTitle(o.Kind, o.Namespace, o.Name))
		}
	}
	slices.Sort(out)
	return out
}

// notActedOnClause says in one clause which objects keelson stores but does
// not act on: "2 objects keelson does not act on yet: Ingress shop/web,
// PersistentVolumeClaim shop/data"; "" when there are none.
func notActedOnClause(names []string) string {
	if len(names) == 0 {
		return ""
	}
	noun := "objects"
	if len(names) == 1 {
		noun = "object"
	}
	shown := names[:min(len(names), maxNotActedOnNamed)]
	s := fmt.Sprintf("%d %s keelson does not act on yet: %s", len(names), noun, strings.Join(shown, ", "))
	if n := len(names) - len(shown); n > 0 {
		s += fmt.Sprintf(" and %d more", n)
	}
	return s
}

// kindRisks flags an object of a kind keelson stores but does not act on,
// which a plan creates or changes: merging it makes nothing happen. An
// object of a kind keelson acts on whose spec asks for what nothing in
// keelson serves (an Ingress of another controller's class, a
// LoadBalancer service of a loadBalancerClass) is flagged too, with what
// its health rule says, Unsupported from its spec alone.
func kindRisks(po *PlannedObject, r store.Resource, obj store.Object, hc health.Context) []Risk {
	if po.Action == Delete {
		return nil
	}
	if missing, ok := support.NotActedOn(r.GVK.GroupKind()); ok {
		return []Risk{{Level: RiskWarning, Code: "kind-not-acted-on", Object: po.Title(), Message: missing}}
	}
	if obj == nil {
		return nil
	}
	if h := hc.OfKind(r.GVK.GroupKind(), obj); h.Status == health.Unsupported {
		return []Risk{{Level: RiskWarning, Code: "not-served", Object: po.Title(), Message: h.Message}}
	}
	return nil
}

// ingressClassesOf are the IngressClasses the cluster will hold once head
// is applied: the cluster's (when the plan reads it), head's, and keelson's
// own, which the control plane keeps whatever Git says.
func ingressClassesOf(head map[key]*desired, cl *clusterState) ingressclass.Map {
	m := ingressclass.Map{}
	add := func(objs map[key]*desired) {
		for _, d := range objs {
			if c, ok := d.obj.(*networkingv1.IngressClass); ok {
				m[c.Name] = c
			}
		}
	}
	if cl != nil {
		add(cl.objects)
	}
	add(head)
	if _, ok := m[ingressclass.Name]; !ok {
		m[ingressclass.Name] = ingressclass.Object()
	}
	return m
}
