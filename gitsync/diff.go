package gitsync

import (
	"fmt"
	"maps"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keelson/keelson/store"
)

// Action is what a sync does to one object.
type Action string

// The actions of a diff.
const (
	Create    Action = "create"
	Update    Action = "update"
	Delete    Action = "delete"
	Unchanged Action = "unchanged"
	// Replace deletes the stored object and creates the one from Git: a
	// change of fields that cannot change on an existing object, allowed
	// by AnnotationReplaceOnChange.
	Replace Action = "replace"
)

// Change is one entry of a diff.
type Change struct {
	Action Action
	// Object is "<resource> <namespace>/<name>", e.g. "deployments.apps default/web".
	Object string
	// Origin is the manifest's file:line; for a deletion, where it was.
	Origin string
	// Drift marks an update whose object did not change in Git since the
	// sync last applied it: the store copy was changed behind Git's back.
	// A sync knows what it applied only since its process started, so the
	// first Apply after a restart marks nothing as drift.
	Drift bool

	res   store.Resource
	obj   store.Object // what to write; nil for a deletion
	cur   store.Object // what the store holds; nil for a creation
	d     *desired     // nil for a deletion
	size  int
	order int
	wave  int
	done  bool // written
}

// metaFields are the top-level fields that are not the spec: the store and
// controllers own metadata and status, and the type is implied by the key.
var metaFields = map[string]bool{"TypeMeta": true, "ObjectMeta": true, "Status": true}

// plan compares one desired object with the stored one (nil when absent).
// Git owns the spec, the labels and the annotations; .status and the store's
// metadata (uid, generation, resourceVersion, …) stay as they are.
func plan(d *desired, cur store.Object, adopt bool) (*Change, error) {
	c := &Change{Object: d.key.String(), Origin: d.origin, res: d.res, cur: cur, order: kindOrder(d.res.GVK.Kind), wave: d.wave}
	if cur == nil {
		c.Action, c.obj = Create, d.obj
		return c, nil
	}
	keepOthersFields(d.obj, cur)
	if d.replicasOwner != "" {
		keepReplicas(d.obj, cur)
	}
	same, err := sameFromGit(d.obj, cur)
	if err != nil {
		return nil, fmt.Errorf("compare %s: %w", c.Object, err)
	}
	if same && !adopt {
		c.Action = Unchanged
		return c, nil
	}
	out, ok := cur.DeepCopyObject().(store.Object)
	if !ok {
		return nil, fmt.Errorf("compare %s: %T has no object metadata", c.Object, cur)
	}
	if wu, ok := d.obj.(*unstructured.Unstructured); ok {
		if ou, ok := out.(*unstructured.Unstructured); ok {
			updateCustom(wu, ou)
			out.SetLabels(d.obj.GetLabels())
			out.SetAnnotations(d.obj.GetAnnotations())
			c.Action, c.obj = Update, out
			return c, nil
		}
	}
	dv, ov := reflect.ValueOf(d.obj).Elem(), reflect.ValueOf(out).Elem()
	if dv.Type() != ov.Type() {
		return nil, fmt.Errorf("compare %s: stored %s, desired %s", c.Object, ov.Type(), dv.Type())
	}
	for i := range dv.NumField() {
		if !metaFields[dv.Type().Field(i).Name] {
			ov.Field(i).Set(dv.Field(i))
		}
	}
	out.SetLabels(d.obj.GetLabels())
	out.SetAnnotations(d.obj.GetAnnotations())
	c.Action, c.obj = Update, out
	return c, nil
}

// sameFromGit reports whether the stored object already holds what Git says:
// the same spec, labels and annotations, except the revision annotation, which
// records the commit that last wrote the object.
func sameFromGit(want, cur store.Object) (bool, error) {
	if !maps.Equal(want.GetLabels(), cur.GetLabels()) {
		return false, nil
	}
	wa, ca := want.GetAnnotations(), cur.GetAnnotations()
	if len(wa) != len(ca) {
		return false, nil
	}
	for k, v := range wa {
		if cv, ok := ca[k]; !ok || (cv != v && k != AnnotationRevision) {
			return false, nil
		}
	}
	if wu, ok := want.(*unstructured.Unstructured); ok {
		if cu, ok := cur.(*unstructured.Unstructured); ok {
			return sameCustom(wu, cu), nil
		}
	}
	wv, cv := reflect.ValueOf(want).Elem(), reflect.ValueOf(cur).Elem()
	if wv.Type() != cv.Type() {
		return false, fmt.Errorf("stored %s, desired %s", cv.Type(), wv.Type())
	}
	for i := range wv.NumField() {
		if metaFields[wv.Type().Field(i).Name] {
			continue
		}
		// Semantic equality: nil and empty are equal, as they are once
		// encoded with omitempty; quantities compare by value.
		if !equality.Semantic.DeepEqual(wv.Field(i).Interface(), cv.Field(i).Interface()) {
			return false, nil
		}
	}
	return true, nil
}

// kindOrder ranks kinds as Kubernetes applies them (Helm's install order):
// namespaces and policies first, then configuration, services, workloads, and
// what refers to workloads last. Deletions run in the reverse order.
func kindOrder(kind string) int {
	switch kind {
	case "Namespace", "CustomResourceDefinition":
		return 0
	case "ResourceQuota", "LimitRange":
		return 1
	case "StorageClass", "PersistentVolume":
		return 2
	case "ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim":
		return 3
	case "Service", "Endpoints", "EndpointSlice":
		return 4
	case "Pod", "ReplicationController", "ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob":
		return 5
	case "NetworkPolicy", "PodDisruptionBudget", "PriorityClass", "RuntimeClass", "FlowSchema", "PriorityLevelConfiguration":
		return 1
	case "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "IngressClass", "CSIDriver", "PodTemplate":
		return 3
	default: // HorizontalPodAutoscaler, Ingress, …
		return 6
	}
}
