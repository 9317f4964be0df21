package rbac_test

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/internal/rbac"
)

// FuzzAuthorize builds a policy from fuzzed rules, labels, selectors,
// bindings and subjects and checks that nothing panics, that reasons say
// what was decided, that system:masters keeps every right, and that a
// policy does not differ from itself.
func FuzzAuthorize(f *testing.F) {
	f.Add("get,list", "", "pods,pods/log", "", "/healthz", "x=true", "In", "Role", "r", "User", "alice", "",
		"get", "shop", "", "pods", "log", "web-0", "", true)
	f.Add("*", "*", "*/status", "web", "/logs/*", "=", "Exists", "ClusterRole", "agg", "ServiceAccount", "web", "",
		"list", "", "apps", "deployments", "status", "", "/logs/x", false)
	f.Add("", ",", "pods/*,*", ",", "*", "a/b=c", "Resembles", "Robot", "", "Group", "system:authenticated", "shop",
		"watch", "shop", "*", "*", "", "", "/", true)
	f.Fuzz(func(t *testing.T, verbs, groups, resources, names, urls, label, op, refKind, refName, subjKind, subjName, subjNS,
		verb, ns, apiGroup, res, sub, name, path string, resourceRequest bool) {
		r := rbacv1.PolicyRule{Verbs: split(verbs), APIGroups: split(groups), Resources: split(resources),
			ResourceNames: split(names), NonResourceURLs: split(urls)}
		key, value, _ := strings.Cut(label, "=")
		labels := map[string]string{key: value}
		agg := aggregatedRole("agg", labels, labels)
		agg.AggregationRule.ClusterRoleSelectors = append(agg.AggregationRule.ClusterRoleSelectors, metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: metav1.LabelSelectorOperator(op), Values: split(value)}}})
		subject := rbacv1.Subject{Kind: subjKind, Name: subjName, Namespace: subjNS}
		o := objects{
			roles:        []*rbacv1.Role{role(ns, "r", r), nil},
			clusterRoles: []*rbacv1.ClusterRole{clusterRole("cr", labels, r), agg, nil},
			roleBindings: []*rbacv1.RoleBinding{roleBinding(ns, "b", refKind, refName, subject), nil},
			clusterRoleBindings: []*rbacv1.ClusterRoleBinding{
				{ObjectMeta: metav1.ObjectMeta{Name: "b"}, RoleRef: rbacv1.RoleRef{Kind: refKind, Name: refName}, Subjects: []rbacv1.Subject{subject}},
				nil,
			},
		}
		p := o.policy()
		a := rbac.Attributes{User: subjName, Groups: []string{subjName, "system:authenticated"}, Verb: verb,
			ResourceRequest: resourceRequest, Namespace: ns, APIGroup: apiGroup, Resource: res, Subresource: sub, Name: name, Path: path}
		allowed, reason := p.Authorize(a)
		if allowed != strings.HasPrefix(reason, "RBAC: allowed by ") || !strings.HasPrefix(reason, "RBAC: ") {
			t.Errorf("Authorize(%+v) = %v, %q", a, allowed, reason)
		}
		a.Groups = append(a.Groups, "system:masters")
		if allowed, reason := p.Authorize(a); !allowed {
			t.Errorf("system:masters: Authorize(%+v) = %v, %q", a, allowed, reason)
		}
		p.RulesFor(subjName, []string{subjName}, ns)
		p.RulesFor(subjName, nil, "")
		for _, c := range rbac.Diff(nil, p) {
			_ = c.String()
			_ = c.Sensitive()
		}
		if d := rbac.Diff(p, o.policy()); len(d) > 0 {
			t.Errorf("a policy differs from itself: %v", d)
		}
	})
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
