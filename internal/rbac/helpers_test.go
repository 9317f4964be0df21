package rbac_test

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/internal/rbac"
)

func rule(verbs, groups, resources []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources}
}

func urlRule(verbs []string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, NonResourceURLs: urls}
}

func list(s ...string) []string { return s }

var readVerbs = list("get", "list", "watch")

func role(ns, name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
}

func clusterRole(name string, labels map[string]string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Rules: rules}
}

// aggregatedRole selects roles by each of the label sets, one selector
// each.
func aggregatedRole(name string, labels map[string]string, selects ...map[string]string) *rbacv1.ClusterRole {
	cr := clusterRole(name, labels)
	cr.AggregationRule = &rbacv1.AggregationRule{}
	for _, s := range selects {
		cr.AggregationRule.ClusterRoleSelectors = append(cr.AggregationRule.ClusterRoleSelectors,
			metav1.LabelSelector{MatchLabels: s})
	}
	return cr
}

func roleBinding(ns, name, kind, roleName string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: roleName},
		Subjects:   subjects,
	}
}

func clusterRoleBinding(name, roleName string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName},
		Subjects:   subjects,
	}
}

func user(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func serviceAccount(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

// objects is one policy's objects, for tables.
type objects struct {
	roles               []*rbacv1.Role
	clusterRoles        []*rbacv1.ClusterRole
	roleBindings        []*rbacv1.RoleBinding
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
}

func (o objects) policy() *rbac.Policy {
	return rbac.NewPolicy(o.roles, o.clusterRoles, o.roleBindings, o.clusterRoleBindings)
}

// resource is a resource request by user alice, in no group.
func resource(verb, ns, apiGroup, res, sub, name string) rbac.Attributes {
	return rbac.Attributes{User: "alice", Verb: verb, ResourceRequest: true,
		Namespace: ns, APIGroup: apiGroup, Resource: res, Subresource: sub, Name: name}
}

// nonResource is a non-resource request by user alice, in no group.
func nonResource(verb, path string) rbac.Attributes {
	return rbac.Attributes{User: "alice", Verb: verb, Path: path}
}

// as returns a with another user and groups.
func as(a rbac.Attributes, user string, groups ...string) rbac.Attributes {
	a.User, a.Groups = user, groups
	return a
}
