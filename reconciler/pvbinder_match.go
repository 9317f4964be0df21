package reconciler

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/keelson/keelson/internal/storageclass"
)

// Annotations of claims and volumes, as Kubernetes names them.
const (
	// annDefaultClass marks the StorageClass that claims without a class get.
	annDefaultClass = storageclass.AnnotationDefault
	// annSelectedNode is the node the scheduler chose for the first pod of
	// a claim whose class binds when a pod needs it (WaitForFirstConsumer).
	annSelectedNode = "volume.kubernetes.io/selected-node"
	// annBindCompleted and annBoundByController say the binder bound a
	// claim, and that it chose the volume.
	annBindCompleted     = "pv.kubernetes.io/bind-completed"
	annBoundByController = "pv.kubernetes.io/bound-by-controller"
)

// claimClass is the StorageClass a claim asks for (storageclass.OfClaim).
func claimClass(pvc *corev1.PersistentVolumeClaim, classes []*storagev1.StorageClass) string {
	return storageclass.OfClaim(pvc, classes)
}

// defaultClass is the name of the default StorageClass (storageclass.Default).
func defaultClass(classes []*storagev1.StorageClass) string { return storageclass.Default(classes) }

// volumeMode is a claim's or volume's mode, Filesystem when unset.
func volumeMode(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// volumeFits says why pv cannot hold claim, of class class, "" when it can:
// the class, the volume mode and the access modes are the claim's, its
// capacity is at least the claim's request, its labels match the claim's
// selector, the claim names no other volume, and, when node is set, the
// volume is reachable from that node.
func volumeFits(pvc *corev1.PersistentVolumeClaim, class string, pv *corev1.PersistentVolume, node *corev1.Node) string {
	if pv.Spec.StorageClassName != class {
		return fmt.Sprintf("storage class %q, the claim asks for %q", pv.Spec.StorageClassName, class)
	}
	if volumeMode(pv.Spec.VolumeMode) != volumeMode(pvc.Spec.VolumeMode) {
		return fmt.Sprintf("volume mode %s, the claim asks for %s", volumeMode(pv.Spec.VolumeMode), volumeMode(pvc.Spec.VolumeMode))
	}
	for _, m := range pvc.Spec.AccessModes {
		if !slices.Contains(pv.Spec.AccessModes, m) {
			return fmt.Sprintf("no access mode %s", m)
		}
	}
	want := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	have := pv.Spec.Capacity[corev1.ResourceStorage]
	if have.Cmp(want) < 0 {
		return fmt.Sprintf("capacity %s, the claim asks for %s", have.String(), want.String())
	}
	if pvc.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(pvc.Spec.Selector)
		if err != nil {
			return fmt.Sprintf("the claim's selector: %v", err)
		}
		if !sel.Matches(labels.Set(pv.Labels)) {
			return "labels do not match the claim's selector"
		}
	}
	if pvc.Spec.VolumeName != "" && pvc.Spec.VolumeName != pv.Name {
		return fmt.Sprintf("the claim names volume %s", pvc.Spec.VolumeName)
	}
	if node != nil && pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
		ok, err := nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required).Match(node)
		if err != nil || !ok {
			return fmt.Sprintf("not reachable from node %s", node.Name)
		}
	}
	return ""
}

// availableFor reports whether pv may be bound to pvc: it is not being
// deleted, and holds no claim or is set aside for this one (a claimRef
// without uid, by name, as a provisioner or a person writes it).
func availableFor(pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) bool {
	if pv.DeletionTimestamp != nil || pv.Status.Phase == corev1.VolumeFailed || pv.Status.Phase == corev1.VolumeReleased {
		return false
	}
	ref := pv.Spec.ClaimRef
	return ref == nil || ref.Namespace == pvc.Namespace && ref.Name == pvc.Name && (ref.UID == "" || ref.UID == pvc.UID)
}

// findVolume picks the volume to bind pvc to among pvs: one set aside for
// it first, else the smallest that fits (ties by name), as Kubernetes picks.
// node, when set, is where the claim's first pod goes.
func findVolume(pvc *corev1.PersistentVolumeClaim, class string, pvs []*corev1.PersistentVolume, node *corev1.Node) *corev1.PersistentVolume {
	var best *corev1.PersistentVolume
	for _, pv := range pvs {
		if !availableFor(pv, pvc) || volumeFits(pvc, class, pv, node) != "" {
			continue
		}
		if ref := pv.Spec.ClaimRef; ref != nil {
			return pv // set aside for this claim
		}
		if best == nil {
			best = pv
			continue
		}
		a, b := pv.Spec.Capacity[corev1.ResourceStorage], best.Spec.Capacity[corev1.ResourceStorage]
		if c := a.Cmp(b); c < 0 || c == 0 && pv.Name < best.Name {
			best = pv
		}
	}
	return best
}
