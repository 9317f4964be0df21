package admission

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
)

// Matches says whether quota q counts obj, an object of its namespace: a
// quota without scopes counts every one; one with scopes (spec.scopes and
// spec.scopeSelector, all of which must hold) counts only pods they
// select, as in Kubernetes.
func Matches(q *corev1.ResourceQuota, obj store.Object) bool {
	if obj == nil {
		return false
	}
	scopes := scopesOf(q)
	if len(scopes) == 0 {
		return true
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return false
	}
	for _, s := range scopes {
		if !scopeHolds(s, p) {
			return false
		}
	}
	return true
}

func scopesOf(q *corev1.ResourceQuota) []corev1.ScopedResourceSelectorRequirement {
	var out []corev1.ScopedResourceSelectorRequirement
	for _, s := range q.Spec.Scopes {
		out = append(out, corev1.ScopedResourceSelectorRequirement{ScopeName: s, Operator: corev1.ScopeSelectorOpExists})
	}
	if q.Spec.ScopeSelector != nil {
		out = append(out, q.Spec.ScopeSelector.MatchExpressions...)
	}
	return out
}

func scopeHolds(s corev1.ScopedResourceSelectorRequirement, p *corev1.Pod) bool {
	var holds bool
	switch s.ScopeName {
	case corev1.ResourceQuotaScopeTerminating:
		holds = p.Spec.ActiveDeadlineSeconds != nil && *p.Spec.ActiveDeadlineSeconds >= 0
	case corev1.ResourceQuotaScopeNotTerminating:
		holds = p.Spec.ActiveDeadlineSeconds == nil || *p.Spec.ActiveDeadlineSeconds < 0
	case corev1.ResourceQuotaScopeBestEffort:
		holds = bestEffort(p)
	case corev1.ResourceQuotaScopeNotBestEffort:
		holds = !bestEffort(p)
	case corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		holds = crossNamespaceAffinity(p)
	case corev1.ResourceQuotaScopePriorityClass:
		return priorityHolds(s, p.Spec.PriorityClassName)
	default:
		return false
	}
	if s.Operator == corev1.ScopeSelectorOpDoesNotExist {
		return !holds
	}
	return holds
}

func priorityHolds(s corev1.ScopedResourceSelectorRequirement, class string) bool {
	switch s.Operator {
	case corev1.ScopeSelectorOpIn:
		return slices.Contains(s.Values, class)
	case corev1.ScopeSelectorOpNotIn:
		return !slices.Contains(s.Values, class)
	case corev1.ScopeSelectorOpExists:
		return class != ""
	case corev1.ScopeSelectorOpDoesNotExist:
		return class == ""
	}
	return false
}

// bestEffort: no container requests or limits cpu or memory.
func bestEffort(p *corev1.Pod) bool {
	for _, c := range allContainers(p) {
		for _, list := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
			if _, ok := list[corev1.ResourceCPU]; ok {
				return false
			}
			if _, ok := list[corev1.ResourceMemory]; ok {
				return false
			}
		}
	}
	return true
}

func crossNamespaceAffinity(p *corev1.Pod) bool {
	a := p.Spec.Affinity
	if a == nil {
		return false
	}
	var terms []corev1.PodAffinityTerm
	if a.PodAffinity != nil {
		terms = append(terms, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	if a.PodAntiAffinity != nil {
		terms = append(terms, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	for _, t := range terms {
		if len(t.Namespaces) > 0 || t.NamespaceSelector != nil {
			return true
		}
	}
	return false
}
