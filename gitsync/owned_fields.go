package gitsync

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
)

// keepOthersFields copies into want the spec fields that other writers own
// on objects from Git, so that a sync neither reverts them nor counts them as
// drift: the scheduler's binding (pod.spec.nodeName), unless Git sets one.
func keepOthersFields(want, cur store.Object) {
	if w, ok := want.(*corev1.Pod); ok {
		if c, ok := cur.(*corev1.Pod); ok && w.Spec.NodeName == "" {
			w.Spec.NodeName = c.Spec.NodeName
		}
	}
}
