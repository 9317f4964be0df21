package rbac

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Authorize reports whether the policy allows the request, and why. When
// it does, the reason names the binding, its role and the subject that
// allowed it, like upstream's. When it does not, the reason says so and
// names each binding that applies to the user but grants nothing because
// its role does not exist (or is of a kind it cannot refer to).
//
// ClusterRoleBindings apply to every request; RoleBindings only to
// resource requests in their namespace, so never to non-resource URLs.
// Rules are additive: nothing denies. A nil policy allows nothing.
func (p *Policy) Authorize(a Attributes) (allowed bool, reason string) {
	if p == nil {
		return false, "RBAC: no policy"
	}
	var problems []string
	if g := p.cluster.allowing(&a, &problems); g != nil {
		return true, g.allowedReason()
	}
	if a.ResourceRequest && a.Namespace != "" {
		if g := p.byNamespace[a.Namespace].allowing(&a, &problems); g != nil {
			return true, g.allowedReason()
		}
	}
	return false, deniedReason(&a, problems)
}

// allowing returns the first grant to the user or one of its groups that
// allows a, adding the problems of the bindings without role on the way.
func (ix index) allowing(a *Attributes, problems *[]string) *grant {
	if len(ix) == 0 {
		return nil
	}
	if g := ix.allowingKey(subjectKey{name: a.User}, a, problems); g != nil {
		return g
	}
	for _, group := range a.Groups {
		if g := ix.allowingKey(subjectKey{group: true, name: group}, a, problems); g != nil {
			return g
		}
	}
	return nil
}

func (ix index) allowingKey(k subjectKey, a *Attributes, problems *[]string) *grant {
	gs := ix[k]
	for i := range gs {
		b := gs[i].b
		if b.problem != "" {
			*problems = append(*problems, b.problem)
			continue
		}
		for j := range b.rules {
			if ruleAllows(&b.rules[j], a) {
				return &gs[i]
			}
		}
	}
	return nil
}

func (g *grant) allowedReason() string {
	b := g.b
	name := b.name
	if b.namespace != "" {
		name = b.namespace + "/" + b.name
	}
	return fmt.Sprintf("RBAC: allowed by %s %q of %s %q to %s",
		b.kind, name, b.roleRef.Kind, b.roleRef.Name, describeSubject(b.subjects[g.subject], b.namespace))
}

// describeSubject is upstream's, but a ServiceAccount is written
// namespace/name, as everywhere else, not name/namespace.
func describeSubject(s rbacv1.Subject, bindingNamespace string) string {
	if s.Kind == rbacv1.ServiceAccountKind {
		return fmt.Sprintf("%s %q", s.Kind, cmp.Or(s.Namespace, bindingNamespace)+"/"+s.Name)
	}
	return fmt.Sprintf("%s %q", s.Kind, s.Name)
}

func deniedReason(a *Attributes, problems []string) string {
	reason := fmt.Sprintf("RBAC: %s may not %s: no RoleBinding or ClusterRoleBinding allows it",
		userLabel(a.User), describeRequest(a))
	if len(problems) == 0 {
		return reason
	}
	slices.Sort(problems)
	return reason + "; " + strings.Join(slices.Compact(problems), "; ")
}

// describeRequest: `get pods "web-1" in namespace shop`, `list nodes
// cluster-wide`, `get /metrics`.
func describeRequest(a *Attributes) string {
	if !a.ResourceRequest {
		return a.Verb + " " + a.Path
	}
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	s := a.Verb + " " + resourceLabel(a.APIGroup, res)
	if a.Name != "" {
		s += fmt.Sprintf(" %q", a.Name)
	}
	if a.Namespace == "" {
		return s + " cluster-wide"
	}
	return s + " in namespace " + a.Namespace
}

// RulesFor returns the rules that apply to the user in the namespace, for
// SelfSubjectRulesReview: those of the ClusterRoleBindings and, unless
// namespace is "", of the namespace's RoleBindings (without non-resource
// URLs, which a RoleBinding does not grant). Rules are copies, without
// duplicates. errs names each binding to the user whose role does not
// exist.
func (p *Policy) RulesFor(user string, groups []string, namespace string) (rules []rbacv1.PolicyRule, errs []string) {
	if p == nil {
		return nil, nil
	}
	keys := []subjectKey{{name: user}}
	for _, g := range groups {
		keys = append(keys, subjectKey{group: true, name: g})
	}
	seen := map[*binding]bool{}
	collect := func(ix index) {
		for _, k := range keys {
			for _, g := range ix[k] {
				if seen[g.b] {
					continue
				}
				seen[g.b] = true
				if g.b.problem != "" {
					errs = append(errs, g.b.problem)
				}
				for _, r := range g.b.rules {
					if !containsRule(rules, r) {
						rules = append(rules, *r.DeepCopy())
					}
				}
			}
		}
	}
	collect(p.cluster)
	if namespace != "" {
		collect(p.byNamespace[namespace])
	}
	return rules, errs
}

// containsRule compares as upstream's aggregation does (Semantic.DeepEqual):
// nil and empty lists are equal, order matters.
func containsRule(rules []rbacv1.PolicyRule, r rbacv1.PolicyRule) bool {
	for i := range rules {
		if ruleEqual(&rules[i], &r) {
			return true
		}
	}
	return false
}

func ruleEqual(a, b *rbacv1.PolicyRule) bool {
	return slices.Equal(a.Verbs, b.Verbs) && slices.Equal(a.APIGroups, b.APIGroups) &&
		slices.Equal(a.Resources, b.Resources) && slices.Equal(a.ResourceNames, b.ResourceNames) &&
		slices.Equal(a.NonResourceURLs, b.NonResourceURLs)
}
