package reconciler

import (
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The autoscaler's constants, Kubernetes' defaults
// (kube-controller-manager --horizontal-pod-autoscaler-*).
const (
	// hpaTolerance: a usage ratio within 10% of 1 changes nothing.
	hpaTolerance = 0.1
	// cpuInitializationPeriod: for this long after a pod starts, its CPU
	// sample counts only once it is Ready and the sample was taken after.
	cpuInitializationPeriod = 5 * time.Minute
	// initialReadinessDelay: a pod that turned unready this soon after it
	// started never counted as ready yet.
	initialReadinessDelay = 30 * time.Second
)

// PodUsage is what the metrics source says one pod uses: the sum over its
// containers, sampled at Timestamp over Window.
type PodUsage struct {
	Timestamp time.Time
	Window    time.Duration
	Usage     corev1.ResourceList
}

// resourceSample is one pod's usage of one resource, in milli-units (mCPU,
// or thousandths of a byte).
type resourceSample struct {
	value     int64
	timestamp time.Time
	window    time.Duration
}

// replicaProposal is what one metric asks for.
type replicaProposal struct {
	replicas int32
	// utilization is the current average utilization in percent of the
	// request (for Utilization targets); value the current average value
	// in milli-units.
	utilization *int32
	value       int64
	// readyPods is how many pods the figure comes from.
	readyPods int
}

// resourceReplicas computes, as Kubernetes' replica calculator does, the
// replicas one Resource metric asks for: the pods' usage of resource over
// their requests (target utilization, percent) or per pod (target average
// value, milli-units when utilization is nil), with unready, missing and
// ignored pods treated as upstream treats them.
func resourceReplicas(current int32, pods []*corev1.Pod, usage map[string]PodUsage, resource corev1.ResourceName,
	targetUtilization *int32, targetValue int64, now time.Time) (replicaProposal, error) {
	if len(pods) == 0 {
		return replicaProposal{}, fmt.Errorf("no pods match the target's selector")
	}
	// Samples of the target's pods only: usage holds the whole namespace's.
	samples := map[string]resourceSample{}
	for _, p := range pods {
		if q, ok := usage[p.Name].Usage[resource]; ok {
			u := usage[p.Name]
			samples[p.Name] = resourceSample{value: q.MilliValue(), timestamp: u.Timestamp, window: u.Window}
		}
	}
	ready, unready, missing, ignored := groupPods(pods, samples, resource, now)
	for name := range unready {
		delete(samples, name)
	}
	for name := range ignored {
		delete(samples, name)
	}
	if len(samples) == 0 {
		return replicaProposal{}, fmt.Errorf("no metrics of %s for the target's ready pods", resource)
	}
	var requests map[string]int64
	if targetUtilization != nil {
		var err error
		if requests, err = podRequests(pods, resource); err != nil {
			return replicaProposal{}, err
		}
	}
	ratio, util, avg, err := usageRatio(samples, requests, resource, targetUtilization, targetValue)
	if err != nil {
		return replicaProposal{}, err
	}
	out := replicaProposal{utilization: util, value: avg, readyPods: ready}
	scaleUpWithUnready := len(unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(missing) == 0 {
		if math.Abs(1.0-ratio) <= hpaTolerance {
			out.replicas = current
			return out, nil
		}
		out.replicas = int32(math.Ceil(ratio * float64(ready)))
		return out, nil
	}
	// Missing pods count as using their full request (or the target, when
	// above 100%; the target value, for values) when scaling down, nothing
	// when scaling up; unready pods as using nothing when scaling up: both
	// damp the change.
	for name := range missing {
		switch {
		case ratio > 1.0:
			samples[name] = resourceSample{}
		case ratio == 1.0:
		case requests != nil:
			samples[name] = resourceSample{value: requests[name] * int64(max(100, *targetUtilization)) / 100}
		default:
			samples[name] = resourceSample{value: targetValue}
		}
	}
	if scaleUpWithUnready {
		for name := range unready {
			samples[name] = resourceSample{}
		}
	}
	newRatio, _, _, err := usageRatio(samples, requests, resource, targetUtilization, targetValue)
	if err != nil {
		return replicaProposal{}, err
	}
	if math.Abs(1.0-newRatio) <= hpaTolerance || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		out.replicas = current
		return out, nil
	}
	n := int32(math.Ceil(newRatio * float64(len(samples))))
	if (newRatio < 1.0 && n > current) || (newRatio > 1.0 && n < current) {
		n = current
	}
	out.replicas = n
	return out, nil
}

// usageRatio is current over target: the utilization of the requests over
// the target utilization, or the average per pod over the target value. It
// also returns the current utilization (percent) or average (milli-units).
func usageRatio(samples map[string]resourceSample, requests map[string]int64, resource corev1.ResourceName,
	targetUtilization *int32, targetValue int64) (ratio float64, util *int32, avg int64, err error) {
	var sum, requested int64
	for name, s := range samples {
		sum += s.value
		if targetUtilization != nil {
			r, ok := requests[name]
			if !ok {
				continue // a pod that left the list meanwhile
			}
			requested += r
		}
	}
	if targetUtilization != nil {
		if requested == 0 {
			return 0, nil, 0, fmt.Errorf("the pods request no %s: set resources.requests.%s, or target an averageValue", resource, resource)
		}
		u := int32(sum * 100 / requested)
		return float64(sum*100) / float64(requested) / float64(*targetUtilization), &u, sum / int64(len(samples)), nil
	}
	if targetValue <= 0 {
		return 0, nil, 0, fmt.Errorf("target averageValue of %s is not positive", resource)
	}
	avg = sum / int64(len(samples))
	return float64(sum) / float64(targetValue*int64(len(samples))), nil, avg, nil
}

// groupPods sorts pods as Kubernetes' autoscaler does: ignored (being
// deleted or failed), unready (pending, or for CPU still starting up),
// missing (no sample) and the count of those that count.
func groupPods(pods []*corev1.Pod, samples map[string]resourceSample, resource corev1.ResourceName, now time.Time) (ready int, unready, missing, ignored map[string]bool) {
	unready, missing, ignored = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodFailed {
			ignored[p.Name] = true
			continue
		}
		if p.Status.Phase == corev1.PodPending {
			unready[p.Name] = true
			continue
		}
		s, ok := samples[p.Name]
		if !ok {
			missing[p.Name] = true
			continue
		}
		if resource == corev1.ResourceCPU && cpuNotReadyYet(p, s, now) {
			unready[p.Name] = true
			continue
		}
		ready++
	}
	return ready, unready, missing, ignored
}

// cpuNotReadyYet says whether a pod's CPU sample should wait: during its
// initialization period, until it is Ready and sampled after; later, only a
// pod that never became ready since its start.
func cpuNotReadyYet(p *corev1.Pod, s resourceSample, now time.Time) bool {
	cond := podReadyCondition(p)
	if cond == nil || p.Status.StartTime == nil {
		return true
	}
	start := p.Status.StartTime.Time
	if start.Add(cpuInitializationPeriod).After(now) {
		return cond.Status == corev1.ConditionFalse || s.timestamp.Before(cond.LastTransitionTime.Add(s.window))
	}
	return cond.Status == corev1.ConditionFalse && start.Add(initialReadinessDelay).After(cond.LastTransitionTime.Time)
}

// podRequests sums each pod's containers' requests of resource; a container
// without one makes utilization meaningless, as upstream says.
func podRequests(pods []*corev1.Pod, resource corev1.ResourceName) (map[string]int64, error) {
	out := make(map[string]int64, len(pods))
	for _, p := range pods {
		var sum int64
		for _, c := range p.Spec.Containers {
			q, ok := c.Resources.Requests[resource]
			if !ok {
				return nil, fmt.Errorf("missing request for %s in container %s of pod %s", resource, c.Name, p.Name)
			}
			sum += q.MilliValue()
		}
		out[p.Name] = sum
	}
	return out, nil
}
