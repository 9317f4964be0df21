package gitsync

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// customMetaFields are the top-level fields of a custom resource that Git
// does not own, as metaFields are for typed objects: everything else of the
// object (spec, data, whatever its schema names) comes from Git.
var customMetaFields = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "status": true}

// sameCustom is sameFromGit's comparison of the fields from Git, for custom
// resources, which are unstructured and so have no struct fields to walk.
func sameCustom(want *unstructured.Unstructured, cur *unstructured.Unstructured) bool {
	for k, v := range want.Object {
		if !customMetaFields[k] && !equality.Semantic.DeepEqual(v, cur.Object[k]) {
			return false
		}
	}
	for k := range cur.Object {
		if _, ok := want.Object[k]; !ok && !customMetaFields[k] {
			return false
		}
	}
	return true
}

// updateCustom puts Git's fields of want into out, a copy of the stored
// object, dropping those Git no longer has.
func updateCustom(want, out *unstructured.Unstructured) {
	for k := range out.Object {
		if _, ok := want.Object[k]; !ok && !customMetaFields[k] {
			delete(out.Object, k)
		}
	}
	for k, v := range want.Object {
		if !customMetaFields[k] {
			out.Object[k] = runtime.DeepCopyJSONValue(v)
		}
	}
}
