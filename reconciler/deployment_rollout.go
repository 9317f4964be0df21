package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

// step takes at most one step of the rollout: create or resize one
// ReplicaSet, or bump the revision of a reused one.
func (c *DeploymentController) step(ctx context.Context, r *rollout) error {
	d := r.d
	replicas := replicasOf(d.Spec.Replicas)
	if d.Spec.Paused {
		if r.newRS != nil && len(active(r.old)) == 0 && replicasOf(r.newRS.Spec.Replicas) != replicas {
			return c.scale(ctx, r, r.newRS, replicas)
		}
		return nil
	}
	if r.newRS != nil && revisionOf(r.newRS) <= maxRevision(r.old) {
		// A rollback to an older template reuses its ReplicaSet, which becomes
		// the newest revision.
		cp := r.newRS.DeepCopy()
		setAnnotation(cp, RevisionAnnotation, strconv.FormatInt(maxRevision(r.old)+1, 10))
		r.progressed = "ReplicaSetUpdated"
		return c.write(ctx, cp)
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return c.recreate(ctx, r, replicas)
	}
	return c.rolling(ctx, r, replicas)
}

func (c *DeploymentController) recreate(ctx context.Context, r *rollout, replicas int32) error {
	if old := active(r.old); len(old) > 0 {
		return c.scale(ctx, r, old[0], 0)
	}
	for _, rs := range r.old {
		if rs.Status.Replicas > 0 || len(ByIndex[*corev1.Pod](c.pods, IndexOwner, string(rs.UID))) > 0 {
			return nil // old pods still run; their deletion queues us again
		}
	}
	if r.newRS == nil {
		return c.createNewRS(ctx, r, replicas)
	}
	if replicasOf(r.newRS.Spec.Replicas) != replicas {
		return c.scale(ctx, r, r.newRS, replicas)
	}
	return nil
}

func (c *DeploymentController) rolling(ctx context.Context, r *rollout, replicas int32) error {
	surge, unavailable, err := surgeAndUnavailable(replicas, r.d.Spec.Strategy.RollingUpdate)
	if err != nil {
		return invalidSpec{reason: "InvalidStrategy", err: err}
	}
	total := size(r.all)
	if r.newRS == nil {
		return c.createNewRS(ctx, r, newReplicas(replicas, surge, total, 0))
	}
	cur := replicasOf(r.newRS.Spec.Replicas)
	if want := newReplicas(replicas, surge, total, cur); want != cur {
		return c.scale(ctx, r, r.newRS, want)
	}
	old := active(r.old)
	if len(old) == 0 {
		return nil
	}
	newUnavailable := cur - r.newRS.Status.AvailableReplicas
	maxScaledDown := total - (replicas - unavailable) - newUnavailable
	if maxScaledDown <= 0 {
		return nil
	}
	// Unavailable pods of old ReplicaSets go first: removing them costs no
	// availability.
	for _, rs := range old {
		if bad := replicasOf(rs.Spec.Replicas) - rs.Status.AvailableReplicas; bad > 0 {
			return c.scale(ctx, r, rs, replicasOf(rs.Spec.Replicas)-min(bad, maxScaledDown))
		}
	}
	var available int32
	for _, rs := range r.all {
		available += rs.Status.AvailableReplicas
	}
	budget := min(scaleDownBudget(replicas, unavailable, available), maxScaledDown)
	if budget <= 0 {
		return nil
	}
	rs := old[0]
	return c.scale(ctx, r, rs, replicasOf(rs.Spec.Replicas)-min(budget, replicasOf(rs.Spec.Replicas)))
}

// size is the number of pods the ReplicaSets may have at most right now: each
// one's spec, or its pods while more remain.
func size(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		n += max(replicasOf(rs.Spec.Replicas), rs.Status.Replicas)
	}
	return n
}

// active returns the ReplicaSets that still want pods.
func active(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if replicasOf(rs.Spec.Replicas) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

func (c *DeploymentController) scale(ctx context.Context, r *rollout, rs *appsv1.ReplicaSet, n int32) error {
	from := replicasOf(rs.Spec.Replicas)
	cp := rs.DeepCopy()
	cp.Spec.Replicas = ptr.To(n)
	cp.Spec.MinReadySeconds = r.d.Spec.MinReadySeconds
	if err := c.write(ctx, cp); err != nil {
		return fmt.Errorf("scale replicaset %s/%s to %d: %w", rs.Namespace, rs.Name, n, err)
	}
	dir := "up"
	if n < from {
		dir = "down"
	}
	c.rec.Eventf(r.d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", dir, rs.Name, from, n)
	r.progressed = "ReplicaSetUpdated"
	return nil
}

// createNewRS creates the ReplicaSet of the Deployment's current template,
// named after its hash.
func (c *DeploymentController) createNewRS(ctx context.Context, r *rollout, n int32) error {
	d := r.d
	hash := templateHash(&d.Spec.Template, d.Status.CollisionCount)
	tmpl := d.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[PodTemplateHashLabel] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[PodTemplateHashLabel] = hash
	lbls := make(map[string]string, len(tmpl.Labels))
	for k, v := range tmpl.Labels {
		lbls[k] = v
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: d.Namespace, Name: d.Name + "-" + hash, Labels: lbls,
			Annotations:     map[string]string{RevisionAnnotation: strconv.FormatInt(maxRevision(r.old)+1, 10)},
			OwnerReferences: []metav1.OwnerReference{ownerRef(d, deploymentGVK)},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(n), MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	err := c.write(ctx, rs)
	if errors.Is(err, store.ErrExists) {
		return c.collided(ctx, r, rs)
	}
	if err != nil {
		return fmt.Errorf("create replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	c.rec.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s to %d", rs.Name, n)
	r.progressed = "NewReplicaSetCreated"
	return nil
}

// collided handles a ReplicaSet name already taken: ours, not yet in the
// cache (wait), or another template's (bump collisionCount for a new name).
func (c *DeploymentController) collided(ctx context.Context, r *rollout, want *appsv1.ReplicaSet) error {
	got := &appsv1.ReplicaSet{}
	if err := c.st.Get(ctx, want.Namespace, want.Name, got); err != nil {
		return err
	}
	if ref := metav1.GetControllerOfNoCopy(got); ref != nil && ref.UID == r.d.UID && sameTemplate(&got.Spec.Template, &r.d.Spec.Template) {
		return fmt.Errorf("replicaset %s/%s exists but is not in the cache yet", got.Namespace, got.Name)
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: r.d.Namespace, Name: r.d.Name}, Status: *r.d.Status.DeepCopy()}
	d.Status.CollisionCount = ptr.To(ptr.Deref(d.Status.CollisionCount, 0) + 1)
	if err := c.st.UpdateStatus(ctx, d); err != nil {
		return err
	}
	return fmt.Errorf("replicaset name %s/%s collides with another template: collisionCount now %d", want.Namespace, want.Name, *d.Status.CollisionCount)
}

func setAnnotation(o metav1.Object, k, v string) {
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	o.SetAnnotations(a)
}
