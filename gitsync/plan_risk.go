package gitsync

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// risks flags what a reviewer should look at in one planned object.
func risks(po *PlannedObject, old, head store.Object, cl *clusterState) []Risk {
	var out []Risk
	add := func(level RiskLevel, code, format string, args ...any) {
		out = append(out, Risk{Level: level, Code: code, Object: po.Title(), Message: fmt.Sprintf(format, args...)})
	}
	if head == nil {
		if old.GetAnnotations()[AnnotationPrune] == "disabled" {
			return nil
		}
		switch o := old.(type) {
		case *corev1.Namespace:
			n := "every object"
			if cl != nil {
				n = fmt.Sprintf("the %d objects", cl.inNamespace[o.Name])
			}
			add(RiskWarning, "delete", "deleting a Namespace deletes %s in it", n)
		case *corev1.PersistentVolumeClaim:
			add(RiskWarning, "data-loss", "deleting a PersistentVolumeClaim can lose the data of its volume (its volume's reclaim policy decides); it waits while a pod uses it")
		case *appsv1.StatefulSet:
			if p := o.Spec.PersistentVolumeClaimRetentionPolicy; len(o.Spec.VolumeClaimTemplates) > 0 && p != nil && p.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
				add(RiskWarning, "delete", "deleting a StatefulSet stops its pods and deletes their claims (persistentVolumeClaimRetentionPolicy.whenDeleted: Delete): their data can be lost")
			} else {
				add(RiskWarning, "delete", "deleting a StatefulSet stops its pods; their claims stay")
			}
		}
		return out
	}
	if hw, ok := workloadOf(head); ok && hw.scalable && hw.replicas == 0 {
		if ow, ok := workloadOf(old); old == nil || (ok && ow.replicas > 0) {
			add(RiskWarning, "scale-to-zero", "replicas set to 0: every pod stops")
		}
	}
	if h, ok := head.(*appsv1.StatefulSet); ok && len(h.Spec.VolumeClaimTemplates) > 0 {
		o, _ := old.(*appsv1.StatefulSet)
		if p := h.Spec.PersistentVolumeClaimRetentionPolicy; o != nil && p != nil && p.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType &&
			replicasOr1(h.Spec.Replicas) < replicasOr1(o.Spec.Replicas) {
			add(RiskWarning, "data-loss", "scaling down deletes the claims of the removed ordinals (persistentVolumeClaimRetentionPolicy.whenScaled: Delete): their data can be lost")
		}
	}
	if old != nil {
		replace := head.GetAnnotations()[AnnotationReplaceOnChange] == "true"
		for _, f := range immutableChanges(old, head) {
			if replace {
				add(RiskWarning, "replace", "%s cannot change once the object exists: it is deleted and created again (%s), and what it runs starts over", f, AnnotationReplaceOnChange)
				continue
			}
			add(RiskError, "immutable-field", "%s cannot change once the object exists; the change would be refused (annotate it %s: \"true\" to delete it and create it again, or give it a new name)", f, AnnotationReplaceOnChange)
		}
	}
	for _, img := range newImages(old, head) {
		tag := imageTag(img)
		switch tag {
		case "":
			add(RiskWarning, "image-tag", "image %s has no tag: it means latest, which changes under the same name", img)
		case "latest":
			add(RiskWarning, "image-tag", "image %s: latest changes under the same name; pin a version or a digest", img)
		}
	}
	if h, ok := head.(*keelsonv1alpha1.NodePolicy); ok && h.Spec.Drain {
		if o, ok := old.(*keelsonv1alpha1.NodePolicy); !ok || !o.Spec.Drain {
			add(RiskWarning, "drain", "drains the nodes it matches: they are cordoned and their pods evicted (DaemonSet pods stay), each while its PodDisruptionBudget allows")
		}
	}
	if _, ok := head.(*corev1.Secret); ok && !po.Encrypted {
		msg := "a Secret in Git keeps its values in clear for everyone who can read the repository"
		if po.SecretKeys != nil && len(po.SecretKeys.Changed)+len(po.SecretKeys.Added) > 0 {
			msg += "; values of " + strings.Join(append(append([]string{}, po.SecretKeys.Added...), po.SecretKeys.Changed...), ", ") + " are in this change"
		}
		add(RiskWarning, "plain-secret", "%s", msg)
	}
	return out
}

// newImages are head's container images that old does not run.
func newImages(old, head store.Object) []string {
	hw, ok := workloadOf(head)
	if !ok {
		if p, isPod := head.(*corev1.Pod); isPod {
			hw.template = &corev1.PodTemplateSpec{Spec: p.Spec}
		} else {
			return nil
		}
	}
	had := map[string]bool{}
	if old != nil {
		if ow, ok := workloadOf(old); ok {
			for _, c := range allContainers(&ow.template.Spec) {
				had[c.Image] = true
			}
		} else if p, ok := old.(*corev1.Pod); ok {
			for _, c := range allContainers(&p.Spec) {
				had[c.Image] = true
			}
		}
	}
	var out []string
	for _, c := range allContainers(&hw.template.Spec) {
		if !had[c.Image] {
			had[c.Image] = true
			out = append(out, c.Image)
		}
	}
	return out
}

func allContainers(s *corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container{}, s.InitContainers...), s.Containers...)
}

// imageTag returns the tag of an image reference, "" when it has none; a
// reference pinned by digest counts as tagged.
func imageTag(ref string) string {
	if strings.Contains(ref, "@") {
		return "@digest"
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return ""
}

// immutableChanges lists the fields of old that head changes although
// Kubernetes refuses to change them on an existing object.
func immutableChanges(old, head store.Object) []string {
	eq := equality.Semantic.DeepEqual
	var out []string
	check := func(field string, a, b any) {
		if !eq(a, b) {
			out = append(out, field)
		}
	}
	switch h := head.(type) {
	case *appsv1.Deployment:
		if o, ok := old.(*appsv1.Deployment); ok {
			check("spec.selector", o.Spec.Selector, h.Spec.Selector)
		}
	case *appsv1.ReplicaSet:
		if o, ok := old.(*appsv1.ReplicaSet); ok {
			check("spec.selector", o.Spec.Selector, h.Spec.Selector)
		}
	case *appsv1.DaemonSet:
		if o, ok := old.(*appsv1.DaemonSet); ok {
			check("spec.selector", o.Spec.Selector, h.Spec.Selector)
		}
	case *appsv1.StatefulSet:
		if o, ok := old.(*appsv1.StatefulSet); ok {
			check("spec.selector", o.Spec.Selector, h.Spec.Selector)
			check("spec.serviceName", o.Spec.ServiceName, h.Spec.ServiceName)
			check("spec.volumeClaimTemplates", o.Spec.VolumeClaimTemplates, h.Spec.VolumeClaimTemplates)
			check("spec.podManagementPolicy", o.Spec.PodManagementPolicy, h.Spec.PodManagementPolicy)
		}
	case *batchv1.Job:
		if o, ok := old.(*batchv1.Job); ok {
			check("spec.selector", o.Spec.Selector, h.Spec.Selector)
			check("spec.template", o.Spec.Template, h.Spec.Template)
		}
	case *corev1.Service:
		o, ok := old.(*corev1.Service)
		external := ok && (o.Spec.Type == corev1.ServiceTypeExternalName || h.Spec.Type == corev1.ServiceTypeExternalName)
		switch {
		case !ok || external:
		case o.Spec.ClusterIP != "" && h.Spec.ClusterIP != "":
			check("spec.clusterIP", o.Spec.ClusterIP, h.Spec.ClusterIP)
		case o.Spec.ClusterIP == corev1.ClusterIPNone:
			// A headless service cannot get an address either.
			check("spec.clusterIP", o.Spec.ClusterIP, h.Spec.ClusterIP)
		}
	case *corev1.PersistentVolumeClaim:
		if o, ok := old.(*corev1.PersistentVolumeClaim); ok {
			a, b := o.Spec.DeepCopy(), h.Spec.DeepCopy()
			a.Resources, b.Resources = corev1.VolumeResourceRequirements{}, corev1.VolumeResourceRequirements{}
			// The binder and the default class fill these in the cluster.
			if b.VolumeName == "" {
				a.VolumeName = ""
			}
			if b.StorageClassName == nil {
				a.StorageClassName = nil
			}
			check("spec (all but resources)", a, b)
		}
	case *corev1.ConfigMap:
		if o, ok := old.(*corev1.ConfigMap); ok && o.Immutable != nil && *o.Immutable {
			check("data (the ConfigMap is immutable: true)", o.Data, h.Data)
			check("binaryData (the ConfigMap is immutable: true)", o.BinaryData, h.BinaryData)
			check("immutable", o.Immutable, h.Immutable)
		}
	case *corev1.Secret:
		if o, ok := old.(*corev1.Secret); ok && o.Immutable != nil && *o.Immutable {
			if o.Annotations[redactedSizes] == "" {
				check("data (the Secret is immutable: true)", secretData(o), secretData(h))
			}
			check("immutable", o.Immutable, h.Immutable)
		}
	}
	return out
}

func replicasOr1(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}
