package reconciler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedhelper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// Reasons a node does not fit, worded as kube-scheduler words them so that
// people recognise them in `kubectl describe pod`.
const (
	reasonNotReady      = "node(s) were not ready"
	reasonUnschedulable = "node(s) were unschedulable"
	reasonAffinity      = "node(s) didn't match Pod's node affinity/selector"
	reasonPorts         = "node(s) didn't have free ports for the requested pod ports"
	reasonTooManyPods   = "Too many pods"
	reasonCPU           = "Insufficient cpu"
	reasonMemory        = "Insufficient memory"
	reasonEphemeral     = "Insufficient ephemeral-storage"
)

// candidate is a pod being scheduled, with what every filter and score needs
// computed once.
type candidate struct {
	pod      *corev1.Pod
	info     *podInfo
	affinity nodeaffinity.RequiredNodeAffinity
	// preferred is nil when the pod has no preferred node affinity.
	preferred *nodeaffinity.PreferredSchedulingTerms
	images    []string
	// podAff, antiAffinity and preferredPods are the pod's inter-pod terms.
	podAff, antiAffinity, preferredPods []*podTerm
	// podAffinity is computed against the snapshot when the pod has terms or
	// bound pods have anti-affinity; nil otherwise.
	podAffinity *podAffinityState
	// spread are the DoNotSchedule topology spread constraints.
	spread []*spreadConstraint
	// volumes are where the pod's claims may be used from (podVolumes).
	volumes podVolumeConstraints
	// owned counts the pods of the candidate's controller per node, from
	// the snapshot, while it is scheduled.
	owned map[*nodeInfo]int
}

func newCandidate(p *corev1.Pod) (*candidate, error) {
	c := &candidate{pod: p, info: newPodInfo(p, ""), affinity: nodeaffinity.GetRequiredNodeAffinity(p)}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
		terms, err := nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
		if err != nil {
			return nil, fmt.Errorf("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution: %w", err)
		}
		c.preferred = terms
	}
	if err := c.parsePodTerms(); err != nil {
		return nil, err
	}
	spread, err := parseSpread(p)
	if err != nil {
		return nil, err
	}
	c.spread = spread
	for _, ct := range p.Spec.Containers {
		c.images = append(c.images, normalizeImage(ct.Image))
	}
	return c, nil
}

func (c *candidate) parsePodTerms() error {
	a := c.pod.Spec.Affinity
	if a == nil {
		return nil
	}
	var err error
	if pa := a.PodAffinity; pa != nil {
		if c.podAff, err = podTerms(c.pod, pa.RequiredDuringSchedulingIgnoredDuringExecution); err != nil {
			return fmt.Errorf("spec.affinity.podAffinity: %w", err)
		}
		if c.preferredPods, err = weightedTerms(c.pod, pa.PreferredDuringSchedulingIgnoredDuringExecution, 1); err != nil {
			return fmt.Errorf("spec.affinity.podAffinity: %w", err)
		}
	}
	if pa := a.PodAntiAffinity; pa != nil {
		if c.antiAffinity, err = podTerms(c.pod, pa.RequiredDuringSchedulingIgnoredDuringExecution); err != nil {
			return fmt.Errorf("spec.affinity.podAntiAffinity: %w", err)
		}
		anti, err := weightedTerms(c.pod, pa.PreferredDuringSchedulingIgnoredDuringExecution, -1)
		if err != nil {
			return fmt.Errorf("spec.affinity.podAntiAffinity: %w", err)
		}
		c.preferredPods = append(c.preferredPods, anti...)
	}
	return nil
}

// filter is one check of whether a pod may go to a node; it returns the
// reasons it may not, nil when it may.
type filter func(c *candidate, n *nodeInfo) []string

// filters run in kube-scheduler's order; the first that fails decides the
// node's reasons.
var filters = []filter{filterReady, filterUnschedulable, filterTaints, filterNodeAffinity, filterPorts, filterResources, filterVolumes, filterPodAffinity, filterSpread}

// fits runs every filter; nil means the node fits.
func fits(c *candidate, n *nodeInfo) []string {
	for _, f := range filters {
		if r := f(c, n); r != nil {
			return r
		}
	}
	return nil
}

var notReady = []string{reasonNotReady}

func filterReady(_ *candidate, n *nodeInfo) []string {
	if n.ready {
		return nil
	}
	return notReady
}

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

func filterUnschedulable(c *candidate, n *nodeInfo) []string {
	if !n.unschedulable {
		return nil
	}
	for i := range c.pod.Spec.Tolerations {
		if c.pod.Spec.Tolerations[i].ToleratesTaint(klogBackground, &unschedulableTaint, false) {
			return nil
		}
	}
	return []string{reasonUnschedulable}
}

func hardTaint(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

func filterTaints(c *candidate, n *nodeInfo) []string {
	if len(n.taints) == 0 {
		return nil
	}
	t, found := schedhelper.FindMatchingUntoleratedTaint(klogBackground, n.taints, c.pod.Spec.Tolerations, hardTaint, false)
	if !found {
		return nil
	}
	return []string{fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)}
}

func filterNodeAffinity(c *candidate, n *nodeInfo) []string {
	if ok, _ := c.affinity.Match(n.node); ok {
		return nil
	}
	return []string{reasonAffinity}
}

func filterPorts(c *candidate, n *nodeInfo) []string {
	for _, hp := range c.info.ports {
		if n.portInUse(hp) {
			return []string{reasonPorts}
		}
	}
	return nil
}

// filterResources compares the pod's requests with what the node's
// allocatable leaves after the pods bound to it, naming every shortfall.
func filterResources(c *candidate, n *nodeInfo) []string {
	var out []string
	req, used, alloc := c.info.req, n.req, n.allocatable
	if used.pods+1 > alloc.pods {
		out = append(out, reasonTooManyPods)
	}
	if req.milliCPU > 0 && used.milliCPU+req.milliCPU > alloc.milliCPU {
		out = append(out, reasonCPU)
	}
	if req.memory > 0 && used.memory+req.memory > alloc.memory {
		out = append(out, reasonMemory)
	}
	if req.ephemeral > 0 && used.ephemeral+req.ephemeral > alloc.ephemeral {
		out = append(out, reasonEphemeral)
	}
	return out
}

// klogBackground is the logger the toleration helpers want; they log nothing
// the scheduler needs.
var klogBackground = klog.Background()
