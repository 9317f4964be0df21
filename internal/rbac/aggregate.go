package rbac

import (
	"maps"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// aggregate returns the rules of every ClusterRole by name, as upstream's
// ClusterRole aggregation controller leaves them once it has settled.
//
// A ClusterRole with an aggregationRule has as rules those of every other
// ClusterRole whose labels match one of its selectors, in the order of the
// selectors and then of the roles' names, without duplicates. Its own
// rules are not among them: upstream's controller overwrites them, and the
// Kubernetes documentation tells people to put rules in the selected roles
// instead. A selected role may itself be aggregated, so aggregation is
// repeated until nothing changes; through a cycle of aggregated roles
// flow only the rules of the plain roles the cycle selects. A selector
// that is not valid selects nothing, as upstream's controller, which fails
// on it, adds nothing.
func aggregate(roles map[string]*rbacv1.ClusterRole) map[string][]rbacv1.PolicyRule {
	rules := make(map[string][]rbacv1.PolicyRule, len(roles))
	names := slices.Sorted(maps.Keys(roles))
	type aggregated struct {
		name    string
		members []string // in the order their rules are taken; may repeat
	}
	var aggs []aggregated
	for _, name := range names {
		cr := roles[name]
		if cr.AggregationRule == nil {
			rules[name] = cr.Rules
			continue
		}
		a := aggregated{name: name}
		for i := range cr.AggregationRule.ClusterRoleSelectors {
			sel, err := metav1.LabelSelectorAsSelector(&cr.AggregationRule.ClusterRoleSelectors[i])
			if err != nil {
				continue
			}
			a.members = append(a.members, selected(sel, name, names, roles)...)
		}
		aggs = append(aggs, a)
		rules[name] = []rbacv1.PolicyRule{}
	}
	// Each round takes in the rules of at least one more step of every
	// chain of aggregated roles, and a chain without repeated roles is at
	// most len(aggs) long. A role's rules only grow from round to round,
	// so a round that adds none to any role is the fixed point. Each round
	// starts afresh to keep upstream's order.
	for range len(aggs) + 1 {
		changed := false
		for _, a := range aggs {
			next := make([]rbacv1.PolicyRule, 0, len(rules[a.name]))
			for _, m := range a.members {
				for _, r := range rules[m] {
					if !containsRule(next, r) {
						next = append(next, r)
					}
				}
			}
			changed = changed || len(next) != len(rules[a.name])
			rules[a.name] = next
		}
		if !changed {
			break
		}
	}
	return rules
}

// selected returns the names of the roles other than self whose labels sel
// matches, sorted.
func selected(sel labels.Selector, self string, names []string, roles map[string]*rbacv1.ClusterRole) []string {
	var out []string
	for _, n := range names {
		if n != self && sel.Matches(labels.Set(roles[n].Labels)) {
			out = append(out, n)
		}
	}
	return out
}
