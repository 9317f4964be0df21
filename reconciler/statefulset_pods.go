package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

// statefulPodName is the name of set's pod of ordinal ord.
func statefulPodName(set *appsv1.StatefulSet, ord int) string {
	return set.Name + "-" + strconv.Itoa(ord)
}

// claimName is the name of the claim of template tmpl for set's ordinal
// ord, as Kubernetes names it: "data-web-0".
func claimName(tmpl string, set *appsv1.StatefulSet, ord int) string {
	return tmpl + "-" + statefulPodName(set, ord)
}

// newStatefulPod is the pod of set's ordinal ord at revision rev: named and
// labelled by its ordinal, with its own hostname in the subdomain of the
// set's service (so that it is "web-0.web.<namespace>.svc" in cluster DNS),
// and a volume for each claim template mounting that ordinal's claim.
func newStatefulPod(set *appsv1.StatefulSet, rev *revision, ord int) *corev1.Pod {
	t := rev.template.DeepCopy()
	name := statefulPodName(set, ord)
	lbls := maps.Clone(t.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	lbls[appsv1.StatefulSetPodNameLabel] = name
	lbls[appsv1.PodIndexLabel] = strconv.Itoa(ord)
	lbls[appsv1.StatefulSetRevisionLabel] = rev.name
	spec := t.Spec
	spec.Hostname, spec.Subdomain = name, set.Spec.ServiceName
	for _, ct := range set.Spec.VolumeClaimTemplates {
		v := corev1.Volume{Name: ct.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(ct.Name, set, ord)},
		}}
		if i := slices.IndexFunc(spec.Volumes, func(x corev1.Volume) bool { return x.Name == ct.Name }); i >= 0 {
			spec.Volumes[i] = v // the claim wins over a template volume of its name, as in Kubernetes
		} else {
			spec.Volumes = append(spec.Volumes, v)
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: set.Namespace, Name: name, Labels: lbls, Annotations: t.Annotations, Finalizers: t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{ownerRef(set, statefulSetGVK)},
		},
		Spec: spec,
	}
}

// ensureClaims creates the claims of ordinal ord that are missing (not for
// a condemned ordinal: it has nothing left to keep) and gives each the
// owners its retention policy asks for, so that the garbage collector
// deletes it with its set or with its pod, or never. Before a pod is
// created (pod nil), a claim being deleted is an error: the pod waits for
// it to go and be made anew rather than mount a claim on its way out.
func (c *StatefulSetController) ensureClaims(ctx context.Context, set *appsv1.StatefulSet, ord int, pod *corev1.Pod, condemned bool) error {
	var errs []error
	for i := range set.Spec.VolumeClaimTemplates {
		ct := &set.Spec.VolumeClaimTemplates[i]
		name := claimName(ct.Name, set, ord)
		pvc, ok := GetCached[*corev1.PersistentVolumeClaim](c.claims, set.Namespace, name)
		if !ok {
			if condemned {
				continue
			}
			if err := c.createClaim(ctx, set, ct, ord, pod); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if pvc.DeletionTimestamp != nil && pod == nil {
			errs = append(errs, fmt.Errorf("statefulset %s/%s: claim %s of pod %s is being deleted: the pod waits until it is gone",
				set.Namespace, set.Name, name, statefulPodName(set, ord)))
			continue
		}
		if pod == nil && slices.ContainsFunc(pvc.OwnerReferences, func(r metav1.OwnerReference) bool {
			return r.Kind == "Pod" && r.Name == statefulPodName(set, ord)
		}) {
			// Owned by an earlier pod of the ordinal, which is gone: the
			// retention policy said Delete when the ordinal was removed, and
			// the garbage collector deletes it; a new pod must not take its
			// data, nor lose the claim under it.
			errs = append(errs, fmt.Errorf("statefulset %s/%s: claim %s belongs to an earlier pod %s and is deleted with it: the pod waits until it is gone",
				set.Namespace, set.Name, name, statefulPodName(set, ord)))
			continue
		}
		refs := claimOwners(set, pvc.OwnerReferences, ord, pod, condemned)
		if equality.Semantic.DeepEqual(refs, pvc.OwnerReferences) {
			continue
		}
		cp := pvc.DeepCopy()
		cp.OwnerReferences = refs
		if err := c.st.Update(ctx, cp); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("statefulset %s/%s: owners of claim %s: %w", set.Namespace, set.Name, name, err))
		}
	}
	return errors.Join(errs...)
}

func (c *StatefulSetController) createClaim(ctx context.Context, set *appsv1.StatefulSet, ct *corev1.PersistentVolumeClaim, ord int, pod *corev1.Pod) error {
	lbls := maps.Clone(ct.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	if set.Spec.Selector != nil {
		maps.Copy(lbls, set.Spec.Selector.MatchLabels)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: set.Namespace, Name: claimName(ct.Name, set, ord), Labels: lbls, Annotations: maps.Clone(ct.Annotations),
		},
		Spec: *ct.Spec.DeepCopy(),
	}
	pvc.OwnerReferences = claimOwners(set, nil, ord, pod, false)
	err := c.st.Create(ctx, pvc)
	switch {
	case err == nil:
		c.rec.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", pvc.Name, statefulPodName(set, ord), set.Name)
		return nil
	case errors.Is(err, store.ErrExists):
		return nil
	}
	c.rec.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %v", pvc.Name, statefulPodName(set, ord), set.Name, err)
	return fmt.Errorf("statefulset %s/%s: create claim %s: %w", set.Namespace, set.Name, pvc.Name, err)
}

// claimOwners are the owner references a claim of set's ordinal ord should
// have, from refs (its own) and the set's persistentVolumeClaimRetentionPolicy:
// whenDeleted Delete makes the set an owner, whenScaled Delete makes the
// pod of a condemned ordinal the owner instead. Owners of someone else's
// stay.
func claimOwners(set *appsv1.StatefulSet, refs []metav1.OwnerReference, ord int, pod *corev1.Pod, condemned bool) []metav1.OwnerReference {
	policy := set.Spec.PersistentVolumeClaimRetentionPolicy
	if policy == nil {
		policy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	podName := statefulPodName(set, ord)
	byPod := condemned && policy.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType && pod != nil
	bySet := policy.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType &&
		!(condemned && policy.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType)
	var out []metav1.OwnerReference
	for _, r := range refs {
		switch {
		case r.Kind == statefulSetGVK.Kind && (r.UID == set.UID || r.Name == set.Name):
		case r.Kind == "Pod" && r.Name == podName:
		default:
			out = append(out, r)
		}
	}
	if bySet {
		out = append(out, metav1.OwnerReference{
			APIVersion: statefulSetGVK.GroupVersion().String(), Kind: statefulSetGVK.Kind, Name: set.Name, UID: set.UID,
			BlockOwnerDeletion: ptr.To(true), Controller: ptr.To(false),
		})
	}
	if byPod {
		out = append(out, metav1.OwnerReference{
			APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
			BlockOwnerDeletion: ptr.To(true), Controller: ptr.To(false),
		})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
