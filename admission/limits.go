package admission

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// LimitRangerAnnotation says on a pod which requests and limits a LimitRange
// set, with Kubernetes' key and wording.
const LimitRangerAnnotation = "kubernetes.io/limit-ranger"

// DefaultPod sets in p's containers (and init containers) the default limits
// and requests of the namespace's LimitRanges (items of type Container) that
// they lack, and notes what it set in LimitRangerAnnotation. It reports
// whether it changed p.
func DefaultPod(p *corev1.Pod, ranges []*corev1.LimitRange) bool {
	var set []string
	fill := func(c *corev1.Container) {
		var req, lim []string
		for _, lr := range ranges {
			for _, item := range lr.Spec.Limits {
				if item.Type != corev1.LimitTypeContainer {
					continue
				}
				for _, name := range SortedNames(item.Default) {
					if _, ok := c.Resources.Limits[name]; !ok {
						if c.Resources.Limits == nil {
							c.Resources.Limits = corev1.ResourceList{}
						}
						c.Resources.Limits[name] = item.Default[name].DeepCopy()
						lim = append(lim, string(name))
					}
				}
				for _, name := range SortedNames(item.DefaultRequest) {
					if _, ok := c.Resources.Requests[name]; !ok {
						if c.Resources.Requests == nil {
							c.Resources.Requests = corev1.ResourceList{}
						}
						c.Resources.Requests[name] = item.DefaultRequest[name].DeepCopy()
						req = append(req, string(name))
					}
				}
			}
		}
		if len(req) > 0 {
			set = append(set, fmt.Sprintf("%s request for %s %s", strings.Join(req, ", "), containerWord(p, c), c.Name))
		}
		if len(lim) > 0 {
			set = append(set, fmt.Sprintf("%s limit for %s %s", strings.Join(lim, ", "), containerWord(p, c), c.Name))
		}
	}
	for i := range p.Spec.InitContainers {
		fill(&p.Spec.InitContainers[i])
	}
	for i := range p.Spec.Containers {
		fill(&p.Spec.Containers[i])
	}
	if len(set) == 0 {
		return false
	}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[LimitRangerAnnotation] = "LimitRanger plugin set: " + strings.Join(set, "; ")
	return true
}

func containerWord(p *corev1.Pod, c *corev1.Container) string {
	for i := range p.Spec.InitContainers {
		if &p.Spec.InitContainers[i] == c {
			return "init container"
		}
	}
	return "container"
}

// SortedNames are a ResourceList's names in order.
func SortedNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// CheckPod lists how p breaks the minimums, maximums and limit-to-request
// ratios of the LimitRanges, per container and for the pod as a whole, in
// Kubernetes' words.
func CheckPod(p *corev1.Pod, ranges []*corev1.LimitRange) []string {
	var out []string
	for _, lr := range ranges {
		for _, item := range lr.Spec.Limits {
			switch item.Type {
			case corev1.LimitTypeContainer:
				for _, c := range allContainers(p) {
					out = append(out, checkItem(item, "Container", c.Resources.Requests, c.Resources.Limits)...)
				}
			case corev1.LimitTypePod:
				opts := resourcehelper.PodResourcesOptions{}
				out = append(out, checkItem(item, "Pod", resourcehelper.PodRequests(p, opts), resourcehelper.PodLimits(p, opts))...)
			}
		}
	}
	return out
}

// CheckClaim lists how a claim's storage request breaks the LimitRanges'
// items of type PersistentVolumeClaim.
func CheckClaim(c *corev1.PersistentVolumeClaim, ranges []*corev1.LimitRange) []string {
	var out []string
	for _, lr := range ranges {
		for _, item := range lr.Spec.Limits {
			if item.Type == corev1.LimitTypePersistentVolumeClaim {
				out = append(out, checkItem(item, "PersistentVolumeClaim", c.Spec.Resources.Requests, c.Spec.Resources.Limits)...)
			}
		}
	}
	return out
}

func checkItem(item corev1.LimitRangeItem, what string, requests, limits corev1.ResourceList) []string {
	var out []string
	claim := what == "PersistentVolumeClaim"
	for _, name := range SortedNames(item.Min) {
		min := item.Min[name]
		req, hasReq := requests[name]
		lim, hasLim := limits[name]
		switch {
		case !hasReq && !claim:
			out = append(out, fmt.Sprintf("minimum %s usage per %s is %s.  No request is specified", name, what, min.String()))
		case hasReq && req.Cmp(min) < 0:
			out = append(out, fmt.Sprintf("minimum %s usage per %s is %s, but request is %s", name, what, min.String(), req.String()))
		case hasLim && lim.Cmp(min) < 0:
			out = append(out, fmt.Sprintf("minimum %s usage per %s is %s, but limit is %s", name, what, min.String(), lim.String()))
		}
	}
	for _, name := range SortedNames(item.Max) {
		max := item.Max[name]
		req, hasReq := requests[name]
		lim, hasLim := limits[name]
		switch {
		case claim && hasReq && req.Cmp(max) > 0:
			out = append(out, fmt.Sprintf("maximum %s usage per %s is %s, but request is %s", name, what, max.String(), req.String()))
		case !hasLim && !claim:
			out = append(out, fmt.Sprintf("maximum %s usage per %s is %s.  No limit is specified", name, what, max.String()))
		case hasLim && lim.Cmp(max) > 0:
			out = append(out, fmt.Sprintf("maximum %s usage per %s is %s, but limit is %s", name, what, max.String(), lim.String()))
		case hasReq && req.Cmp(max) > 0:
			out = append(out, fmt.Sprintf("maximum %s usage per %s is %s, but request is %s", name, what, max.String(), req.String()))
		}
	}
	for _, name := range SortedNames(item.MaxLimitRequestRatio) {
		ratio := item.MaxLimitRequestRatio[name]
		req, hasReq := requests[name]
		lim, hasLim := limits[name]
		if !hasLim {
			continue
		}
		if !hasReq || req.IsZero() {
			out = append(out, fmt.Sprintf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", name, what, ratio.String()))
			continue
		}
		if got := float64(lim.MilliValue()) / float64(req.MilliValue()); got > ratio.AsApproximateFloat64() {
			out = append(out, fmt.Sprintf("%s max limit to request ratio per %s is %s, but provided ratio is %f", name, what, ratio.String(), got))
		}
	}
	return out
}

// quantity formats a ResourceList's name=value pairs in name order, as
// Kubernetes' quota messages do.
func quantities(l corev1.ResourceList, names []corev1.ResourceName) string {
	parts := make([]string, len(names))
	for i, n := range names {
		q := l[n]
		parts[i] = string(n) + "=" + q.String()
	}
	return strings.Join(parts, ",")
}

var zero = resource.Quantity{}
