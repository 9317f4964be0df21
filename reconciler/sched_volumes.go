package reconciler

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/support"
)

// reasonVolumeNode is kube-scheduler's reason for a node from which a
// pod's bound volume cannot be reached.
const reasonVolumeNode = "node(s) had volume node affinity conflict"

// podVolumeConstraints are the nodes a pod's claims allow: those that
// reach each bound volume (its node affinity, as a local volume has), and,
// for a ReadWriteOnce claim that other pods use already, their node only.
type podVolumeConstraints struct {
	affinity []volumeAffinity
	pinned   []pinnedClaim
	// delayed are the claims of WaitForFirstConsumer classes, not bound
	// yet: a node fits when a volume there fits each, or it has room to
	// provision it (local-path); the node chosen is written on them.
	delayed []delayedClaim
	// localUsed is the local-path storage each node has given out, by
	// node name, for delayed claims of local-path.
	localUsed map[string]int64
}

type delayedClaim struct {
	pvc       *corev1.PersistentVolumeClaim
	class     string
	localPath bool
	volumes   []*corev1.PersistentVolume
}

type volumeAffinity struct {
	volume string
	sel    *nodeaffinity.LazyErrorNodeSelector
}

type pinnedClaim struct {
	claim, node string
}

// podVolumes reads the pod's claims: one missing, being deleted or not
// bound yet keeps the pod from every node, in kube-scheduler's words; a
// ReadWriteOncePod claim another pod uses, likewise. Otherwise it returns
// where the claims may be used from.
func (s *Scheduler) podVolumes(p *corev1.Pod) (podVolumeConstraints, error) {
	var out podVolumeConstraints
	var unbound []string
	for i := range p.Spec.Volumes {
		v := &p.Spec.Volumes[i]
		name := podClaimName(p, v)
		if name == "" {
			continue
		}
		pvc, ok := GetCached[*corev1.PersistentVolumeClaim](s.claims, p.Namespace, name)
		switch {
		case !ok:
			return out, fmt.Errorf("persistentvolumeclaim %q not found", name)
		case v.Ephemeral != nil && !claimOfPod(pvc, p):
			return out, fmt.Errorf("persistentvolumeclaim %q was not created for pod %s (pod is not owner)", name, p.Name)
		case pvc.DeletionTimestamp != nil:
			return out, fmt.Errorf("persistentvolumeclaim %q is being deleted", name)
		case pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "":
			classes := s.listClasses()
			class := claimClass(pvc, classes)
			sc := findClass(classes, class)
			if sc == nil || sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
				unbound = append(unbound, name)
				continue
			}
			if node := pvc.Annotations[annSelectedNode]; node != "" {
				return out, fmt.Errorf("waiting for persistentvolumeclaim %q to be bound on node %s, chosen for it", name, node)
			}
			d := delayedClaim{pvc: pvc, class: class, localPath: sc.Provisioner == keelsonv1alpha1.LocalPathProvisioner}
			for _, o := range s.volumes.GetIndexer().List() {
				d.volumes = append(d.volumes, o.(*corev1.PersistentVolume))
			}
			out.delayed = append(out.delayed, d)
			if d.localPath && out.localUsed == nil {
				out.localUsed = s.localPathUsed()
			}
			continue
		}
		if pv, ok := GetCached[*corev1.PersistentVolume](s.volumes, "", pvc.Spec.VolumeName); ok && pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
			out.affinity = append(out.affinity, volumeAffinity{pv.Name, nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required)})
		}
		modes := pvc.Status.AccessModes
		if len(modes) == 0 {
			modes = pvc.Spec.AccessModes
		}
		switch {
		case slices.Contains(modes, corev1.ReadWriteOncePod):
			if other := s.claimUser(p, name); other != nil {
				return out, fmt.Errorf("persistentvolumeclaim %q is ReadWriteOncePod and pod %s uses it", name, other.Name)
			}
		case slices.Contains(modes, corev1.ReadWriteMany), slices.Contains(modes, corev1.ReadOnlyMany):
		default: // ReadWriteOnce: one node at a time
			if other := s.claimUser(p, name); other != nil {
				out.pinned = append(out.pinned, pinnedClaim{name, other.Spec.NodeName})
			}
		}
	}
	if len(unbound) > 0 {
		msg := fmt.Sprintf("pod has unbound immediate PersistentVolumeClaims: %s", strings.Join(unbound, ", "))
		if missing, ok := support.NotActedOn(schema.GroupKind{Kind: "PersistentVolumeClaim"}); ok {
			msg += " (" + missing + ")"
		}
		return out, errors.New(msg)
	}
	return out, nil
}

func claimOfPod(o metav1.Object, p *corev1.Pod) bool {
	ref := metav1.GetControllerOfNoCopy(o)
	return ref != nil && ref.UID == p.UID
}

// claimUser is a pod other than p, bound to a node and not finished, that
// mounts the claim; nil when there is none.
func (s *Scheduler) claimUser(p *corev1.Pod, claim string) *corev1.Pod {
	for _, o := range ByIndex[*corev1.Pod](s.pods, IndexNamespace, p.Namespace) {
		if o.UID == p.UID || o.Spec.NodeName == "" || podFinished(o) {
			continue
		}
		for i := range o.Spec.Volumes {
			if podClaimName(o, &o.Spec.Volumes[i]) == claim {
				return o
			}
		}
	}
	return nil
}

func (s *Scheduler) listClasses() []*storagev1.StorageClass {
	var out []*storagev1.StorageClass
	for _, o := range s.classes.GetIndexer().List() {
		out = append(out, o.(*storagev1.StorageClass))
	}
	return out
}

// localPathUsed is the local-path storage each node has given out: its
// provisioned volumes, and the claims it was chosen for that are not bound
// yet.
func (s *Scheduler) localPathUsed() map[string]int64 {
	used := map[string]int64{}
	for _, o := range s.volumes.GetIndexer().List() {
		pv := o.(*corev1.PersistentVolume)
		if node := pv.Annotations[keelsonv1alpha1.AnnotationLocalPathNode]; node != "" {
			q := pv.Spec.Capacity[corev1.ResourceStorage]
			used[node] += q.Value()
		}
	}
	for _, o := range s.claims.GetIndexer().List() {
		pvc := o.(*corev1.PersistentVolumeClaim)
		if node := pvc.Annotations[annSelectedNode]; node != "" && pvc.Spec.VolumeName == "" {
			q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
			used[node] += q.Value()
		}
	}
	return used
}

// localPathCapacity is what a node offers local-path claims, from its
// agent's annotation; false when it offers none.
func localPathCapacity(n *corev1.Node) (int64, bool) {
	v, ok := n.Annotations[keelsonv1alpha1.AnnotationLocalPathCapacity]
	if !ok {
		return 0, false
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return 0, false
	}
	return q.Value(), true
}

// reasonNoStorage is kube-scheduler's reason for a node without room for
// a claim to provision.
const reasonNoStorage = "node(s) did not have enough free storage"

func filterVolumes(c *candidate, n *nodeInfo) []string {
	extra := int64(0)
	for _, d := range c.volumes.delayed {
		if findVolume(d.pvc, d.class, d.volumes, n.node) != nil {
			continue // a volume on this node fits it
		}
		capacity, ok := localPathCapacity(n.node)
		if !d.localPath || !ok {
			return []string{"node(s) did not find available persistent volumes to bind"}
		}
		q := d.pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		extra += q.Value()
		if c.volumes.localUsed[n.node.Name]+extra > capacity {
			return []string{reasonNoStorage}
		}
	}
	for _, a := range c.volumes.affinity {
		if ok, err := a.sel.Match(n.node); err != nil || !ok {
			return []string{reasonVolumeNode}
		}
	}
	for _, pc := range c.volumes.pinned {
		if n.node.Name != pc.node {
			return []string{fmt.Sprintf("node(s) were not where ReadWriteOnce claim %s is in use", pc.claim)}
		}
	}
	return nil
}
