package rbac_test

import (
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/keelson/keelson/internal/rbac"
)

func TestDefaults(t *testing.T) {
	p := objects{roleBindings: []*rbacv1.RoleBinding{
		roleBinding("shop", "viewers", "ClusterRole", "view", group("viewers")),
		roleBinding("shop", "editors", "ClusterRole", "edit", group("editors")),
		roleBinding("shop", "admins", "ClusterRole", "admin", group("admins")),
	}}.policy()
	authn := func(a rbac.Attributes, groups ...string) rbac.Attributes {
		return as(a, "alice", append([]string{"system:authenticated"}, groups...)...)
	}
	tests := []struct {
		name string
		req  rbac.Attributes
		want bool
	}{
		{"authenticated: GET /version", authn(nonResource("get", "/version")), true},
		{"authenticated: GET /apis", authn(nonResource("get", "/apis")), true},
		{"authenticated: GET /apis/apps/v1", authn(nonResource("get", "/apis/apps/v1")), true},
		{"authenticated: GET /healthz", authn(nonResource("get", "/healthz")), true},
		{"authenticated: POST /version", authn(nonResource("post", "/version")), false},
		{"authenticated: GET /metrics", authn(nonResource("get", "/metrics")), false},
		{"authenticated: GET /logs/", authn(nonResource("get", "/logs/")), false},
		{"authenticated: get pods", authn(resource("get", "shop", "", "pods", "", "web-0")), false},
		{"authenticated: list namespaces", authn(resource("list", "", "", "namespaces", "", "")), false},
		{"authenticated: get secrets", authn(resource("get", "shop", "", "secrets", "", "db")), false},
		{"authenticated: create selfsubjectaccessreviews (system:basic-user)",
			authn(resource("create", "", "authorization.k8s.io", "selfsubjectaccessreviews", "", "")), true},
		{"authenticated: create selfsubjectreviews (system:basic-user)",
			authn(resource("create", "", "authentication.k8s.io", "selfsubjectreviews", "", "")), true},
		{"authenticated: create subjectaccessreviews", authn(resource("create", "", "authorization.k8s.io", "subjectaccessreviews", "", "")), false},
		{"unauthenticated: GET /version", as(nonResource("get", "/version"), "system:anonymous", "system:unauthenticated"), true},
		{"unauthenticated: GET /apis", as(nonResource("get", "/apis"), "system:anonymous", "system:unauthenticated"), false},
		{"masters: delete secrets", as(resource("delete", "shop", "", "secrets", "", "db"), "root", "system:masters"), true},
		{"masters: escalate clusterroles", as(resource("escalate", "", "rbac.authorization.k8s.io", "clusterroles", "", "x"), "root", "system:masters"), true},
		{"masters: GET /metrics", as(nonResource("get", "/metrics"), "root", "system:masters"), true},
		{"view: get pods", authn(resource("get", "shop", "", "pods", "", "web-0"), "viewers"), true},
		{"view: get pods/log", authn(resource("get", "shop", "", "pods", "log", "web-0"), "viewers"), true},
		{"view: list deployments", authn(resource("list", "shop", "apps", "deployments", "", ""), "viewers"), true},
		{"view: watch endpointslices", authn(resource("watch", "shop", "discovery.k8s.io", "endpointslices", "", ""), "viewers"), true},
		{"view: get its namespace", authn(resource("get", "shop", "", "namespaces", "", "shop"), "viewers"), true},
		{"view: get secrets", authn(resource("get", "shop", "", "secrets", "", "db"), "viewers"), false},
		{"view: list secrets", authn(resource("list", "shop", "", "secrets", "", ""), "viewers"), false},
		{"view: exec", authn(resource("create", "shop", "", "pods", "exec", "web-0"), "viewers"), false},
		{"view: delete pods", authn(resource("delete", "shop", "", "pods", "", "web-0"), "viewers"), false},
		{"view: get pods in another namespace", authn(resource("get", "prod", "", "pods", "", "web-0"), "viewers"), false},
		{"view: list roles", authn(resource("list", "shop", "rbac.authorization.k8s.io", "roles", "", ""), "viewers"), false},
		{"edit: get secrets", authn(resource("get", "shop", "", "secrets", "", "db"), "editors"), true},
		{"edit: get pods (of view)", authn(resource("get", "shop", "", "pods", "", "web-0"), "editors"), true},
		{"edit: list roles", authn(resource("list", "shop", "rbac.authorization.k8s.io", "roles", "", ""), "editors"), false},
		{"admin: list rolebindings", authn(resource("list", "shop", "rbac.authorization.k8s.io", "rolebindings", "", ""), "admins"), true},
		{"admin: get secrets (of edit)", authn(resource("get", "shop", "", "secrets", "", "db"), "admins"), true},
		{"admin: get pods (of view)", authn(resource("get", "shop", "", "pods", "", "web-0"), "admins"), true},
		{"admin: list clusterroles", authn(resource("list", "", "rbac.authorization.k8s.io", "clusterroles", "", ""), "admins"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, reason := p.Authorize(tt.req); got != tt.want {
				t.Errorf("Authorize(%+v) = %v, %s; want %v", tt.req, got, reason, tt.want)
			}
		})
	}
}

func TestDefaultObjects(t *testing.T) {
	roles := rbac.DefaultClusterRoles()
	names := map[string]bool{}
	for _, cr := range roles {
		names[cr.Name] = true
		if cr.Labels["kubernetes.io/bootstrapping"] != "rbac-defaults" {
			t.Errorf("ClusterRole %s: labels %v, want kubernetes.io/bootstrapping: rbac-defaults", cr.Name, cr.Labels)
		}
	}
	for _, n := range []string{"cluster-admin", "admin", "edit", "view", "system:aggregate-to-admin", "system:aggregate-to-edit",
		"system:aggregate-to-view", "system:discovery", "system:basic-user", "system:public-info-viewer", "system:auth-delegator"} {
		if !names[n] {
			t.Errorf("no default ClusterRole %s", n)
		}
	}
	for _, crb := range rbac.DefaultClusterRoleBindings() {
		if crb.Labels["kubernetes.io/bootstrapping"] != "rbac-defaults" {
			t.Errorf("ClusterRoleBinding %s: labels %v, want kubernetes.io/bootstrapping: rbac-defaults", crb.Name, crb.Labels)
		}
		if !names[crb.RoleRef.Name] || crb.RoleRef.Kind != "ClusterRole" {
			t.Errorf("ClusterRoleBinding %s refers to %s %s, no default", crb.Name, crb.RoleRef.Kind, crb.RoleRef.Name)
		}
	}
	if !slices.IsSortedFunc(roles, func(a, b *rbacv1.ClusterRole) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("DefaultClusterRoles not sorted by name")
	}
	// Each call returns new objects.
	for _, cr := range roles {
		for i := range cr.Rules {
			cr.Rules[i].Verbs[0] = "delete"
		}
		cr.Labels["x"] = "y"
	}
	for _, cr := range rbac.DefaultClusterRoles() {
		if cr.Labels["x"] != "" || len(cr.Rules) > 0 && cr.Rules[0].Verbs[0] == "delete" {
			t.Errorf("DefaultClusterRoles returned %s as changed after the call before", cr.Name)
		}
	}
}

func TestReplaceDefault(t *testing.T) {
	p := objects{
		clusterRoles: []*rbacv1.ClusterRole{clusterRole("view", nil, rule(readVerbs, list(""), list("configmaps")))},
		roleBindings: []*rbacv1.RoleBinding{roleBinding("shop", "viewers", "ClusterRole", "view", user("alice"))},
		clusterRoleBindings: []*rbacv1.ClusterRoleBinding{
			clusterRoleBinding("system:discovery", "system:discovery", group("discoverers")),
		},
	}.policy()
	tests := []struct {
		name string
		req  rbac.Attributes
		want bool
	}{
		{"view replaced: configmaps", resource("get", "shop", "", "configmaps", "", "c"), true},
		{"view replaced: no pods", resource("get", "shop", "", "pods", "", "web-0"), false},
		{"binding replaced: not for authenticated", as(nonResource("get", "/apis"), "alice", "system:authenticated"), false},
		{"binding replaced: for its group", as(nonResource("get", "/apis"), "alice", "discoverers"), true},
		{"other defaults stay", as(nonResource("get", "/version"), "alice", "system:authenticated"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, reason := p.Authorize(tt.req); got != tt.want {
				t.Errorf("Authorize(%+v) = %v, %s; want %v", tt.req, got, reason, tt.want)
			}
		})
	}
}

func TestRulesFor(t *testing.T) {
	pods := rule(readVerbs, list(""), list("pods"))
	nodes := rule(readVerbs, list(""), list("nodes"))
	metrics := urlRule(list("get"), "/metrics")
	p := objects{
		roles: []*rbacv1.Role{role("shop", "pod-reader", pods)},
		clusterRoles: []*rbacv1.ClusterRole{
			clusterRole("node-reader", nil, nodes, metrics),
			clusterRole("pod-reader", nil, pods, metrics),
		},
		roleBindings: []*rbacv1.RoleBinding{
			roleBinding("shop", "pods", "Role", "pod-reader", user("alice"), group("team-a")),
			roleBinding("shop", "pods-again", "ClusterRole", "pod-reader", group("team-a")),
			roleBinding("shop", "missing", "Role", "gone", group("team-a")),
			roleBinding("prod", "pods", "Role", "pod-reader", user("alice")),
		},
		clusterRoleBindings: []*rbacv1.ClusterRoleBinding{clusterRoleBinding("nodes", "node-reader", user("alice"))},
	}.policy()
	tests := []struct {
		name      string
		groups    []string
		namespace string
		want      []rbacv1.PolicyRule
		errs      []string
	}{
		{"cluster only", nil, "", []rbacv1.PolicyRule{nodes, metrics}, nil},
		{"namespace", nil, "shop", []rbacv1.PolicyRule{nodes, metrics, pods}, nil},
		{"namespace, groups; RoleBindings grant no URLs, rules once", []string{"team-a"}, "shop",
			[]rbacv1.PolicyRule{nodes, metrics, pods},
			[]string{`RoleBinding shop/missing refers to Role "gone", which does not exist`}},
		{"namespace without Role", nil, "prod", []rbacv1.PolicyRule{nodes, metrics}, []string{`RoleBinding prod/pods refers to Role "pod-reader", which does not exist`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, errs := p.RulesFor("alice", tt.groups, tt.namespace)
			// The defaults grant alice nothing: she is in no default group.
			if !equality.Semantic.DeepEqual(rules, tt.want) || !slices.Equal(errs, tt.errs) {
				t.Errorf("RulesFor =\n%v, %q\nwant\n%v, %q", rules, errs, tt.want, tt.errs)
			}
		})
	}
	rules, _ := p.RulesFor("alice", nil, "")
	rules[0].Resources[0] = "secrets"
	if again, _ := p.RulesFor("alice", nil, ""); again[0].Resources[0] != "nodes" {
		t.Error("RulesFor returned the policy's own rules")
	}
}
