package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

// controllerRevisionHashLabel labels a ControllerRevision with the hash of
// its data, as Kubernetes does.
const controllerRevisionHashLabel = "controller.kubernetes.io/hash"

// revision is one ControllerRevision of a StatefulSet: its name, which its
// pods carry in the controller-revision-hash label, and its pod template.
type revision struct {
	name     string
	template *corev1.PodTemplateSpec
}

// revisionData is what a ControllerRevision of set holds: its pod template
// as the patch that replaces it, the form `kubectl rollout history` and
// `kubectl rollout undo` read. The encoding is canonical (keys sorted), so
// equal templates give equal bytes.
func revisionData(t *corev1.PodTemplateSpec) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": m}})
}

// canonical re-encodes JSON with sorted keys.
func canonical(raw []byte) []byte {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

// revisionTemplate decodes the pod template a ControllerRevision holds.
func revisionTemplate(r *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var d struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(r.Data.Raw, &d); err != nil {
		return nil, fmt.Errorf("controllerrevision %s/%s: %w", r.Namespace, r.Name, err)
	}
	return &d.Spec.Template, nil
}

// revisionName is the name of set's revision of data, the set's name and
// hash, and the hash: of the data and the collision count.
func revisionName(set *appsv1.StatefulSet, data []byte) (name, hash string) {
	h := fnv.New32a()
	h.Write(data)
	if set.Status.CollisionCount != nil {
		fmt.Fprintf(h, "%d", *set.Status.CollisionCount)
	}
	prefix := set.Name
	if len(prefix) > 223 {
		prefix = prefix[:223]
	}
	hash = rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
	return prefix + "-" + hash, hash
}

// ownedRevisions are set's ControllerRevisions, oldest first.
func (c *StatefulSetController) ownedRevisions(set *appsv1.StatefulSet) []*appsv1.ControllerRevision {
	var out []*appsv1.ControllerRevision
	for _, r := range ByIndex[*appsv1.ControllerRevision](c.revs, IndexOwner, string(set.UID)) {
		if ref := metav1.GetControllerOfNoCopy(r); ref != nil && ref.UID == set.UID {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *appsv1.ControllerRevision) int {
		if a.Revision != b.Revision {
			return int(a.Revision - b.Revision)
		}
		return bytes.Compare([]byte(a.Name), []byte(b.Name))
	})
	return out
}

// revisions returns set's current revision (the one its status names, the
// template its pods had before a rollout) and its update revision (its
// template now), creating the latter when no revision holds the template.
// A template that returns to an older revision makes that revision the
// newest again, as a rollback does in Kubernetes.
func (c *StatefulSetController) revisions(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision) (cur, upd *revision, err error) {
	data, err := revisionData(&set.Spec.Template)
	if err != nil {
		return nil, nil, Terminal(fmt.Errorf("statefulset %s/%s: encode template: %w", set.Namespace, set.Name, err))
	}
	latest, same := newestAndSame(revs, data)
	if same == nil {
		// A revision is about to be made: its number comes from etcd, since
		// the cache may not have seen the revision an earlier pass made (a
		// new one numbered from a stale cache would be taken for older).
		live, err := c.liveRevisions(ctx, set)
		if err != nil {
			return nil, nil, err
		}
		latest, same = newestAndSame(live, data)
	}
	switch {
	case same != nil && same.Revision < latest:
		cp := same.DeepCopy()
		cp.Revision = latest + 1
		if err := c.st.Update(ctx, cp); err != nil {
			return nil, nil, fmt.Errorf("statefulset %s/%s: renumber revision %s: %w", set.Namespace, set.Name, same.Name, err)
		}
		same = cp
	case same == nil:
		if same, err = c.createRevision(ctx, set, data, latest+1); err != nil {
			return nil, nil, err
		}
	}
	upd = &revision{name: same.Name, template: &set.Spec.Template}
	cur = upd
	for _, r := range revs {
		if r.Name == set.Status.CurrentRevision && r.Name != upd.name {
			t, err := revisionTemplate(r)
			if err != nil {
				return nil, nil, Terminal(err)
			}
			cur = &revision{name: r.Name, template: t}
		}
	}
	return cur, upd, nil
}

// newestAndSame returns the highest revision number of revs and the
// revision holding data, if any.
func newestAndSame(revs []*appsv1.ControllerRevision, data []byte) (latest int64, same *appsv1.ControllerRevision) {
	for _, r := range revs {
		latest = max(latest, r.Revision)
		if bytes.Equal(canonical(r.Data.Raw), data) {
			same = r
		}
	}
	return latest, same
}

// liveRevisions reads set's ControllerRevisions from the store.
func (c *StatefulSetController) liveRevisions(ctx context.Context, set *appsv1.StatefulSet) ([]*appsv1.ControllerRevision, error) {
	l, err := c.st.List(ctx, store.MustResource("controllerrevisions.apps"), store.ListOptions{Namespace: set.Namespace})
	if err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: list revisions: %w", set.Namespace, set.Name, err)
	}
	var out []*appsv1.ControllerRevision
	for _, o := range l.Items {
		r := o.(*appsv1.ControllerRevision)
		if ref := metav1.GetControllerOfNoCopy(r); ref != nil && ref.UID == set.UID {
			out = append(out, r)
		}
	}
	return out, nil
}

// createRevision stores a new revision of set. A revision of the same name
// with other data is a hash collision: the set's collision count goes up
// and the next pass names it anew.
func (c *StatefulSetController) createRevision(ctx context.Context, set *appsv1.StatefulSet, data []byte, number int64) (*appsv1.ControllerRevision, error) {
	name, hash := revisionName(set, data)
	lbls := maps.Clone(set.Spec.Template.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	lbls[controllerRevisionHashLabel] = hash
	r := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: set.Namespace, Name: name, Labels: lbls, Annotations: maps.Clone(set.Annotations), // a change-cause, for kubectl rollout history
			OwnerReferences: []metav1.OwnerReference{ownerRef(set, statefulSetGVK)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: number,
	}
	err := c.st.Create(ctx, r)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("statefulset %s/%s: create revision %s: %w", set.Namespace, set.Name, name, err)
	}
	old := &appsv1.ControllerRevision{}
	if err := c.st.Get(ctx, set.Namespace, name, old); err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: read revision %s: %w", set.Namespace, set.Name, name, err)
	}
	ref := metav1.GetControllerOfNoCopy(old)
	switch {
	case ref != nil && ref.UID == set.UID && bytes.Equal(canonical(old.Data.Raw), data):
		return old, nil // made by an earlier pass the cache has not seen yet
	case ref == nil && bytes.Equal(canonical(old.Data.Raw), data):
		// Left by a set of this name deleted with its dependents orphaned:
		// adopted, so that the pods it left, which carry its name, are
		// taken as they are rather than rolled.
		old.OwnerReferences = append(old.OwnerReferences, ownerRef(set, statefulSetGVK))
		old.Revision = number
		if err := c.st.Update(ctx, old); err != nil {
			return nil, fmt.Errorf("statefulset %s/%s: adopt revision %s: %w", set.Namespace, set.Name, name, err)
		}
		return old, nil
	}
	cp := set.DeepCopy()
	cp.Status.CollisionCount = ptr.To(ptr.Deref(set.Status.CollisionCount, 0) + 1)
	if err := c.st.UpdateStatus(ctx, cp); err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: count a revision name collision: %w", set.Namespace, set.Name, err)
	}
	return nil, fmt.Errorf("statefulset %s/%s: revision name %s is taken by other data: collision count raised", set.Namespace, set.Name, name)
}

// truncateHistory deletes the oldest revisions beyond revisionHistoryLimit
// that no pod runs and that are neither current nor the update revision.
func (c *StatefulSetController) truncateHistory(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision, pods []*corev1.Pod, status appsv1.StatefulSetStatus) error {
	live := map[string]bool{status.CurrentRevision: true, status.UpdateRevision: true}
	for _, p := range pods {
		live[p.Labels[appsv1.StatefulSetRevisionLabel]] = true
	}
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Name] {
			old = append(old, r)
		}
	}
	limit := int(ptr.Deref(set.Spec.RevisionHistoryLimit, 10))
	if limit < 0 {
		return nil // not a limit: keep them all, as Kubernetes does
	}
	var errs []error
	for _, r := range old[:max(0, len(old)-limit)] {
		uid := r.UID
		err := c.st.Delete(ctx, store.MustResource("controllerrevisions.apps"), r.Namespace, r.Name, &metav1.Preconditions{UID: &uid})
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			errs = append(errs, fmt.Errorf("statefulset %s/%s: delete old revision %s: %w", set.Namespace, set.Name, r.Name, err))
		}
	}
	return errors.Join(errs...)
}
