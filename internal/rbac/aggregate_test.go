package rbac_test

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAggregation(t *testing.T) {
	pods := rule(readVerbs, list(""), list("pods"))
	secrets := rule(readVerbs, list(""), list("secrets"))
	nodes := rule(readVerbs, list(""), list("nodes"))
	config := rule(readVerbs, list(""), list("configmaps"))
	x := map[string]string{"x": "true"}
	y := map[string]string{"y": "true"}
	tests := []struct {
		name  string
		roles []*rbacv1.ClusterRole
		want  []rbacv1.PolicyRule // of ClusterRole "agg"
	}{
		{"selected roles", []*rbacv1.ClusterRole{
			aggregatedRole("agg", nil, x),
			clusterRole("b", x, secrets),
			clusterRole("a", x, pods),
			clusterRole("c", y, nodes),
		}, []rbacv1.PolicyRule{pods, secrets}},
		{"selectors in order, each's roles by name", []*rbacv1.ClusterRole{
			aggregatedRole("agg", nil, y, x),
			clusterRole("a", x, pods),
			clusterRole("b", y, secrets),
		}, []rbacv1.PolicyRule{secrets, pods}},
		{"no duplicates", []*rbacv1.ClusterRole{
			aggregatedRole("agg", nil, x, y),
			clusterRole("a", x, pods, secrets),
			clusterRole("b", map[string]string{"x": "true", "y": "true"}, pods),
			// Without resourceNames, nil or empty, is the same rule.
			clusterRole("c", y, rbacv1.PolicyRule{Verbs: readVerbs, APIGroups: list(""), Resources: list("secrets"), ResourceNames: []string{}}),
		}, []rbacv1.PolicyRule{pods, secrets}},
		{"own rules replaced", []*rbacv1.ClusterRole{
			withRules(aggregatedRole("agg", nil, x), nodes),
			clusterRole("a", x, pods),
		}, []rbacv1.PolicyRule{pods}},
		{"transitive", []*rbacv1.ClusterRole{
			aggregatedRole("agg", nil, x),
			aggregatedRole("mid", x, y),
			aggregatedRole("low", y, map[string]string{"z": "true"}),
			clusterRole("a", map[string]string{"z": "true"}, pods),
			clusterRole("b", y, secrets),
		}, []rbacv1.PolicyRule{secrets, pods}},
		{"cycle", []*rbacv1.ClusterRole{
			withRules(aggregatedRole("agg", x, y), nodes),
			withRules(aggregatedRole("other", y, x), config),
			clusterRole("a", x, pods),
			clusterRole("b", y, secrets),
		}, []rbacv1.PolicyRule{secrets, pods}},
		{"self", []*rbacv1.ClusterRole{
			withRules(aggregatedRole("agg", x, x), nodes),
			clusterRole("a", x, pods),
		}, []rbacv1.PolicyRule{pods}},
		{"match expressions", []*rbacv1.ClusterRole{
			withSelector(aggregatedRole("agg", nil), metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "x", Operator: metav1.LabelSelectorOpIn, Values: list("true", "yes")}}}),
			clusterRole("a", map[string]string{"x": "yes"}, pods),
			clusterRole("b", y, secrets),
		}, []rbacv1.PolicyRule{pods}},
		{"invalid selector", []*rbacv1.ClusterRole{
			withSelector(aggregatedRole("agg", nil), metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "x", Operator: "Resembles", Values: list("true")}}}),
			clusterRole("a", x, pods),
		}, nil},
		{"no selectors", []*rbacv1.ClusterRole{
			withRules(aggregatedRole("agg", nil), nodes),
			clusterRole("a", x, pods),
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := objects{
				clusterRoles:        tt.roles,
				clusterRoleBindings: []*rbacv1.ClusterRoleBinding{clusterRoleBinding("b", "agg", user("alice"))},
			}.policy()
			got, errs := p.RulesFor("alice", nil, "")
			if len(errs) > 0 {
				t.Fatalf("RulesFor: %v", errs)
			}
			if !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("rules of agg:\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func withRules(cr *rbacv1.ClusterRole, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	cr.Rules = rules
	return cr
}

func withSelector(cr *rbacv1.ClusterRole, s metav1.LabelSelector) *rbacv1.ClusterRole {
	cr.AggregationRule.ClusterRoleSelectors = append(cr.AggregationRule.ClusterRoleSelectors, s)
	return cr
}

// TestAggregationAuthorizes: the aggregated rules are the ones Authorize
// uses, through a RoleBinding as through a ClusterRoleBinding.
func TestAggregationAuthorizes(t *testing.T) {
	p := objects{
		clusterRoles: []*rbacv1.ClusterRole{
			aggregatedRole("monitoring", nil, map[string]string{"example.com/aggregate-to-monitoring": "true"}),
			clusterRole("monitoring-pods", map[string]string{"example.com/aggregate-to-monitoring": "true"},
				rule(readVerbs, list(""), list("pods"))),
		},
		roleBindings: []*rbacv1.RoleBinding{roleBinding("shop", "monitoring", "ClusterRole", "monitoring", user("alice"))},
	}.policy()
	if allowed, reason := p.Authorize(resource("list", "shop", "", "pods", "", "")); !allowed {
		t.Errorf("list pods in shop: %s", reason)
	}
	if allowed, reason := p.Authorize(resource("list", "prod", "", "pods", "", "")); allowed {
		t.Errorf("list pods in prod: %s", reason)
	}
}
