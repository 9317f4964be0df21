package rbac_test

import (
	"strings"
	"sync"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/keelson/keelson/internal/rbac"
)

// TestRuleMatching binds one rule to alice cluster-wide and checks each
// form of verbs, groups, resources, names and URLs upstream matches.
func TestRuleMatching(t *testing.T) {
	names := rbacv1.PolicyRule{Verbs: list("get", "list", "watch", "create"), APIGroups: list(""),
		Resources: list("configmaps"), ResourceNames: list("web")}
	tests := []struct {
		name string
		rule rbacv1.PolicyRule
		req  rbac.Attributes
		want bool
	}{
		{"verb", rule(list("get"), list(""), list("pods")), resource("get", "shop", "", "pods", "", "web-0"), true},
		{"other verb", rule(list("get"), list(""), list("pods")), resource("list", "shop", "", "pods", "", ""), false},
		{"every verb", rule(list("*"), list(""), list("pods")), resource("delete", "shop", "", "pods", "", "web-0"), true},
		{"group", rule(list("get"), list("apps"), list("deployments")), resource("get", "shop", "apps", "deployments", "", "web"), true},
		{"other group", rule(list("get"), list("apps"), list("deployments")), resource("get", "shop", "extensions", "deployments", "", "web"), false},
		{"core group is not every group", rule(list("get"), list(""), list("deployments")), resource("get", "shop", "apps", "deployments", "", "web"), false},
		{"every group", rule(list("get"), list("*"), list("deployments")), resource("get", "shop", "apps", "deployments", "", "web"), true},
		{"resource", rule(list("get"), list(""), list("pods")), resource("get", "", "", "pods", "", ""), true},
		{"other resource", rule(list("get"), list(""), list("pods")), resource("get", "shop", "", "secrets", "", "db"), false},
		{"resource is not its subresource", rule(list("get"), list(""), list("pods")), resource("get", "shop", "", "pods", "log", "web-0"), false},
		{"subresource", rule(list("get"), list(""), list("pods/log")), resource("get", "shop", "", "pods", "log", "web-0"), true},
		{"subresource is not its resource", rule(list("get"), list(""), list("pods/log")), resource("get", "shop", "", "pods", "", "web-0"), false},
		{"other subresource", rule(list("get"), list(""), list("pods/log")), resource("get", "shop", "", "pods", "status", "web-0"), false},
		{"*/subresource", rule(list("get"), list("*"), list("*/status")), resource("get", "shop", "apps", "deployments", "status", "web"), true},
		{"*/subresource, other subresource", rule(list("get"), list("*"), list("*/status")), resource("get", "shop", "", "pods", "log", "web-0"), false},
		{"*/subresource, no subresource", rule(list("get"), list("*"), list("*/status")), resource("get", "shop", "", "pods", "", "web-0"), false},
		{"resource/* is no wildcard", rule(list("get"), list(""), list("pods/*")), resource("get", "shop", "", "pods", "log", "web-0"), false},
		{"resource/* is not the resource", rule(list("get"), list(""), list("pods/*")), resource("get", "shop", "", "pods", "", "web-0"), false},
		{"every resource", rule(list("get"), list(""), list("*")), resource("get", "shop", "", "secrets", "", "db"), true},
		{"every resource, subresource", rule(list("get"), list(""), list("*")), resource("get", "shop", "", "pods", "exec", "web-0"), true},
		{"resourceNames: get by name", names, resource("get", "shop", "", "configmaps", "", "web"), true},
		{"resourceNames: other name", names, resource("get", "shop", "", "configmaps", "", "db"), false},
		{"resourceNames: list", names, resource("list", "shop", "", "configmaps", "", ""), false},
		{"resourceNames: watch of the collection", names, resource("watch", "shop", "", "configmaps", "", ""), false},
		{"resourceNames: watch by name", names, resource("watch", "shop", "", "configmaps", "", "web"), true},
		{"resourceNames: create", names, resource("create", "shop", "", "configmaps", "", ""), false},
		{"url", urlRule(list("get"), "/healthz"), nonResource("get", "/healthz"), true},
		{"url, other verb", urlRule(list("get"), "/healthz"), nonResource("post", "/healthz"), false},
		{"url is no prefix", urlRule(list("get"), "/healthz"), nonResource("get", "/healthz/etcd"), false},
		{"url prefix", urlRule(list("get"), "/logs/*"), nonResource("get", "/logs/kubelet.log"), true},
		{"url prefix, the slash", urlRule(list("get"), "/logs/*"), nonResource("get", "/logs/"), true},
		{"url prefix, without the slash", urlRule(list("get"), "/logs/*"), nonResource("get", "/logs"), false},
		{"url prefix without slash", urlRule(list("get"), "/metrics*"), nonResource("get", "/metricsx"), true},
		{"every url", urlRule(list("get"), "*"), nonResource("get", "/anything/at/all"), true},
		{"url rule, resource request", urlRule(list("*"), "*"), resource("get", "shop", "", "pods", "", "web-0"), false},
		{"resource rule, url request", rule(list("*"), list("*"), list("*")), nonResource("get", "/version"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := objects{
				clusterRoles:        []*rbacv1.ClusterRole{clusterRole("r", nil, tt.rule)},
				clusterRoleBindings: []*rbacv1.ClusterRoleBinding{clusterRoleBinding("b", "r", user("alice"))},
			}.policy()
			if got, reason := p.Authorize(tt.req); got != tt.want {
				t.Errorf("Authorize(%+v) = %v, %s; want %v", tt.req, got, reason, tt.want)
			}
		})
	}
}

func TestBindingScope(t *testing.T) {
	p := objects{
		roles: []*rbacv1.Role{
			role("shop", "pod-reader", rule(readVerbs, list(""), list("pods"))),
			role("prod", "secret-reader", rule(readVerbs, list(""), list("secrets"))),
		},
		clusterRoles: []*rbacv1.ClusterRole{
			clusterRole("metrics", nil, urlRule(list("get"), "/metrics"), rule(readVerbs, list(""), list("configmaps"))),
			clusterRole("node-reader", nil, rule(readVerbs, list(""), list("nodes"))),
		},
		roleBindings: []*rbacv1.RoleBinding{
			roleBinding("shop", "pods", "Role", "pod-reader", user("alice")),
			roleBinding("shop", "metrics", "ClusterRole", "metrics", user("alice")),
			roleBinding("shop", "secrets", "Role", "secret-reader", user("alice")), // in prod, not in shop
		},
		clusterRoleBindings: []*rbacv1.ClusterRoleBinding{
			clusterRoleBinding("nodes", "node-reader", user("bob")),
			clusterRoleBinding("metrics", "metrics", user("bob")),
		},
	}.policy()
	tests := []struct {
		name string
		req  rbac.Attributes
		want bool
	}{
		{"RoleBinding, its namespace", resource("get", "shop", "", "pods", "", "web-0"), true},
		{"RoleBinding, another namespace", resource("get", "prod", "", "pods", "", "web-0"), false},
		{"RoleBinding, every namespace", resource("list", "", "", "pods", "", ""), false},
		{"RoleBinding to ClusterRole, its namespace", resource("list", "shop", "", "configmaps", "", ""), true},
		{"RoleBinding to ClusterRole, another namespace", resource("list", "prod", "", "configmaps", "", ""), false},
		{"RoleBinding grants no URL", nonResource("get", "/metrics"), false},
		{"RoleBinding grants no URL, even given a namespace", rbac.Attributes{User: "alice", Verb: "get", Namespace: "shop", Path: "/metrics"}, false},
		{"RoleBinding to a Role of another namespace", resource("get", "shop", "", "secrets", "", "db"), false},
		{"ClusterRoleBinding, a namespace", as(resource("list", "prod", "", "configmaps", "", ""), "bob"), true},
		{"ClusterRoleBinding, every namespace", as(resource("list", "", "", "configmaps", "", ""), "bob"), true},
		{"ClusterRoleBinding, cluster-scoped", as(resource("get", "", "", "nodes", "", "node-1"), "bob"), true},
		{"ClusterRoleBinding, URL", as(nonResource("get", "/metrics"), "bob"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, reason := p.Authorize(tt.req); got != tt.want {
				t.Errorf("Authorize(%+v) = %v, %s; want %v", tt.req, got, reason, tt.want)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	reader := role("shop", "reader", rule(readVerbs, list(""), list("pods")))
	get := resource("get", "shop", "", "pods", "", "web-0")
	web := rbac.ServiceAccountUsername("shop", "web")
	tests := []struct {
		name    string
		subject rbacv1.Subject
		cluster bool // bind with a ClusterRoleBinding to a ClusterRole of the same rules
		req     rbac.Attributes
		want    bool
	}{
		{"user", user("alice"), false, get, true},
		{"other user", user("bob"), false, get, false},
		{"user is no group", user("team-a"), false, as(get, "carol", "team-a"), false},
		{"group", group("team-a"), false, as(get, "carol", "team-a"), true},
		{"other group", group("team-a"), false, as(get, "carol", "team-b"), false},
		{"group is no user", group("alice"), false, get, false},
		{"ServiceAccount", serviceAccount("shop", "web"), false, as(get, web), true},
		{"ServiceAccount of another namespace", serviceAccount("prod", "web"), false, as(get, web), false},
		{"ServiceAccount, namespace of the RoleBinding", serviceAccount("", "web"), false, as(get, web), true},
		{"ServiceAccount, namespace of the RoleBinding, not another", serviceAccount("", "web"), false,
			as(get, rbac.ServiceAccountUsername("prod", "web")), false},
		{"ServiceAccount of another namespace, ClusterRoleBinding", serviceAccount("prod", "web"), true,
			as(get, rbac.ServiceAccountUsername("prod", "web")), true},
		{"ServiceAccount without namespace, ClusterRoleBinding", serviceAccount("", "web"), true, as(get, web), false},
		{"ServiceAccount without namespace, ClusterRoleBinding, empty namespace", serviceAccount("", "web"), true,
			as(get, "system:serviceaccount::web"), false},
		{"user of a ServiceAccount's name", user(web), false, as(get, web), true},
		{"ServiceAccounts of the namespace", group("system:serviceaccounts:shop"), false,
			as(get, web, rbac.ServiceAccountGroups("shop")...), true},
		{"unknown kind", rbacv1.Subject{Kind: "Robot", Name: "alice"}, false, get, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := objects{roles: []*rbacv1.Role{reader}}
			if tt.cluster {
				o.clusterRoles = []*rbacv1.ClusterRole{clusterRole("reader", nil, reader.Rules...)}
				o.clusterRoleBindings = []*rbacv1.ClusterRoleBinding{clusterRoleBinding("b", "reader", tt.subject)}
			} else {
				o.roleBindings = []*rbacv1.RoleBinding{roleBinding("shop", "b", "Role", "reader", tt.subject)}
			}
			if got, reason := o.policy().Authorize(tt.req); got != tt.want {
				t.Errorf("Authorize(%+v) = %v, %s; want %v", tt.req, got, reason, tt.want)
			}
		})
	}
}

func TestServiceAccountNames(t *testing.T) {
	if got, want := rbac.ServiceAccountUsername("shop", "web"), "system:serviceaccount:shop:web"; got != want {
		t.Errorf("ServiceAccountUsername = %q, want %q", got, want)
	}
	got := rbac.ServiceAccountGroups("shop")
	if len(got) != 2 || got[0] != "system:serviceaccounts" || got[1] != "system:serviceaccounts:shop" {
		t.Errorf("ServiceAccountGroups = %q", got)
	}
}

func TestReasons(t *testing.T) {
	p := objects{
		roles: []*rbacv1.Role{role("shop", "reader", rule(readVerbs, list(""), list("pods")))},
		roleBindings: []*rbacv1.RoleBinding{
			roleBinding("shop", "readers", "Role", "pod-reader", user("alice")),
			roleBinding("shop", "viewers", "ClusterRole", "viewer", group("team-a")),
			roleBinding("shop", "others", "Role", "gone", user("bob")),
			roleBinding("shop", "robots", "Robot", "r2", user("alice")),
			roleBinding("shop", "web", "Role", "reader", serviceAccount("", "web")),
		},
		clusterRoleBindings: []*rbacv1.ClusterRoleBinding{
			clusterRoleBinding("all", "everything", group("team-a")),
			{ObjectMeta: clusterRoleBinding("local", "").ObjectMeta, RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "reader"},
				Subjects: []rbacv1.Subject{user("alice")}},
		},
	}.policy()
	tests := []struct {
		name    string
		req     rbac.Attributes
		allowed bool
		reason  string
	}{
		{"allowed by a RoleBinding to a ServiceAccount", as(resource("get", "shop", "", "pods", "", "web-0"), rbac.ServiceAccountUsername("shop", "web")), true,
			`RBAC: allowed by RoleBinding "shop/web" of Role "reader" to ServiceAccount "shop/web"`},
		{"allowed by a default", as(nonResource("get", "/version"), "alice", "system:authenticated"), true,
			`RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"`},
		{"denied, roles missing", as(resource("get", "shop", "", "pods", "", "web-0"), "alice", "team-a"), false,
			`RBAC: user "alice" may not get pods "web-0" in namespace shop: no RoleBinding or ClusterRoleBinding allows it; ` +
				`ClusterRoleBinding all refers to ClusterRole "everything", which does not exist; ` +
				`ClusterRoleBinding local refers to Role "reader", but a ClusterRoleBinding can only refer to a ClusterRole; ` +
				`RoleBinding shop/readers refers to Role "pod-reader", which does not exist; ` +
				`RoleBinding shop/robots refers to a role of kind "Robot", which is neither Role nor ClusterRole; ` +
				`RoleBinding shop/viewers refers to ClusterRole "viewer", which does not exist`},
		{"denied, no binding", as(resource("list", "", "apps", "deployments", "scale", ""), rbac.ServiceAccountUsername("shop", "db")), false,
			`RBAC: ServiceAccount shop/db may not list deployments.apps/scale cluster-wide: no RoleBinding or ClusterRoleBinding allows it`},
		{"denied, URL", nonResource("get", "/metrics"), false,
			`RBAC: user "alice" may not get /metrics: no RoleBinding or ClusterRoleBinding allows it; ` +
				`ClusterRoleBinding local refers to Role "reader", but a ClusterRoleBinding can only refer to a ClusterRole`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allowed, reason := p.Authorize(tt.req)
			if allowed != tt.allowed || reason != tt.reason {
				t.Errorf("Authorize(%+v) =\n%v, %s\nwant\n%v, %s", tt.req, allowed, reason, tt.allowed, tt.reason)
			}
		})
	}
}

// TestMissingRoleGrantsNothing: a binding to a missing role neither
// grants nor hides what another binding grants.
func TestMissingRoleGrantsNothing(t *testing.T) {
	o := objects{
		roles: []*rbacv1.Role{role("shop", "reader", rule(readVerbs, list(""), list("pods")))},
		roleBindings: []*rbacv1.RoleBinding{
			roleBinding("shop", "a-missing", "Role", "pod-reader", user("alice")),
			roleBinding("shop", "b-present", "Role", "reader", user("alice")),
		},
	}
	p := o.policy()
	allowed, reason := p.Authorize(resource("get", "shop", "", "pods", "", "web-0"))
	if !allowed || !strings.Contains(reason, `"shop/b-present"`) {
		t.Errorf("Authorize = %v, %s; want allowed by shop/b-present", allowed, reason)
	}
	allowed, reason = p.Authorize(resource("get", "shop", "", "secrets", "", "db"))
	if allowed || !strings.Contains(reason, `RoleBinding shop/a-missing refers to Role "pod-reader", which does not exist`) {
		t.Errorf("Authorize = %v, %s; want denied naming shop/a-missing", allowed, reason)
	}
}

func TestNilPolicy(t *testing.T) {
	var p *rbac.Policy
	if allowed, _ := p.Authorize(nonResource("get", "/version")); allowed {
		t.Error("nil policy allowed a request")
	}
	if rules, errs := p.RulesFor("alice", nil, "shop"); rules != nil || errs != nil {
		t.Errorf("nil policy: RulesFor = %v, %v", rules, errs)
	}
}

// TestPolicyIsASnapshot: changing the objects after NewPolicy changes
// nothing, and the policy may be read from many goroutines.
func TestPolicyIsASnapshot(t *testing.T) {
	r := role("shop", "reader", rule(readVerbs, list(""), list("pods")))
	rb := roleBinding("shop", "readers", "Role", "reader", user("alice"))
	p := rbac.NewPolicy([]*rbacv1.Role{r}, nil, []*rbacv1.RoleBinding{rb}, nil)
	r.Rules[0].Resources[0] = "secrets"
	rb.Subjects[0].Name = "mallory"
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if allowed, reason := p.Authorize(resource("get", "shop", "", "pods", "", "web-0")); !allowed {
				t.Errorf("after changing the objects: %s", reason)
			}
			if allowed, _ := p.Authorize(as(resource("get", "shop", "", "secrets", "", "db"), "mallory")); allowed {
				t.Error("after changing the objects: mallory reads secrets")
			}
		})
	}
	wg.Wait()
}
