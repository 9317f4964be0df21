package reconciler

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

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
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		name := v.PersistentVolumeClaim.ClaimName
		pvc, ok := GetCached[*corev1.PersistentVolumeClaim](s.claims, p.Namespace, name)
		switch {
		case !ok:
			return out, fmt.Errorf("persistentvolumeclaim %q not found", name)
		case pvc.DeletionTimestamp != nil:
			return out, fmt.Errorf("persistentvolumeclaim %q is being deleted", name)
		case pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "":
			unbound = append(unbound, name)
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

// claimUser is a pod other than p, bound to a node and not finished, that
// mounts the claim; nil when there is none.
func (s *Scheduler) claimUser(p *corev1.Pod, claim string) *corev1.Pod {
	for _, o := range ByIndex[*corev1.Pod](s.pods, IndexNamespace, p.Namespace) {
		if o.UID == p.UID || o.Spec.NodeName == "" || podFinished(o) {
			continue
		}
		for _, v := range o.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
				return o
			}
		}
	}
	return nil
}

func filterVolumes(c *candidate, n *nodeInfo) []string {
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
