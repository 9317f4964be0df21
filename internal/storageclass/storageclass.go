package storageclass

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// AnnotationDefault marks the StorageClass that claims without a class get.
const AnnotationDefault = "storageclass.kubernetes.io/is-default-class"

// OfClaim is the StorageClass a claim asks for: its storageClassName, or,
// when it has none, the default class's name ("" when there is none). An
// empty storageClassName asks for volumes without a class.
func OfClaim(pvc *corev1.PersistentVolumeClaim, classes []*storagev1.StorageClass) string {
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return Default(classes)
}

// Default is the name of the default StorageClass, the newest when several
// say they are (ties by name), as Kubernetes picks; "" when none does.
func Default(classes []*storagev1.StorageClass) string {
	var best *storagev1.StorageClass
	for _, c := range classes {
		if c.Annotations[AnnotationDefault] != "true" {
			continue
		}
		if best == nil || c.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			c.CreationTimestamp.Equal(&best.CreationTimestamp) && c.Name < best.Name {
			best = c
		}
	}
	if best == nil {
		return ""
	}
	return best.Name
}

// Find returns the class of that name among classes, nil when absent.
func Find(classes []*storagev1.StorageClass, name string) *storagev1.StorageClass {
	for _, c := range classes {
		if c.Name == name {
			return c
		}
	}
	return nil
}
