package rbac_test

import (
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/keelson/keelson/internal/rbac"
)

func TestDiff(t *testing.T) {
	podReader := role("shop", "pod-reader", rule(readVerbs, list(""), list("pods")))
	podSecretReader := role("shop", "pod-reader", rule(readVerbs, list(""), list("pods", "secrets")))
	secretReader := role("shop", "secret-reader", rule(readVerbs, list(""), list("secrets")))
	readAll := clusterRole("read-all", nil, rule(readVerbs, list("*"), list("*")))
	base := objects{
		roles:        []*rbacv1.Role{podReader, secretReader},
		roleBindings: []*rbacv1.RoleBinding{roleBinding("shop", "pods", "Role", "pod-reader", group("team-a"))},
	}
	withBinding := func(o objects, rbs ...*rbacv1.RoleBinding) objects {
		o.roleBindings = append(slices.Clip(o.roleBindings), rbs...)
		return o
	}
	tests := []struct {
		name          string
		before, after objects
		want          []string
		sensitive     []bool
	}{
		{"unchanged", base, base, nil, nil},
		{"defaults only", objects{}, objects{}, nil, nil},
		{"a Role without binding", objects{}, objects{roles: []*rbacv1.Role{secretReader}}, nil, nil},
		{"secret read gained by a new RoleBinding", base,
			withBinding(base, roleBinding("shop", "secrets", "Role", "secret-reader", group("team-a"))),
			[]string{`group "team-a" gains read of secrets in namespace shop`}, []bool{true}},
		{"a binding removed",
			withBinding(base, roleBinding("shop", "secrets", "Role", "secret-reader", group("team-a"))), base,
			[]string{`group "team-a" loses read of secrets in namespace shop`}, []bool{true}},
		{"a role edit adds secrets", base, objects{roles: []*rbacv1.Role{podSecretReader}, roleBindings: base.roleBindings},
			[]string{`group "team-a" gains read of secrets in namespace shop`}, []bool{true}},
		{"a ServiceAccount gains pods everywhere", objects{}, objects{
			clusterRoles: []*rbacv1.ClusterRole{clusterRole("pods", nil, rule(list("get", "list"), list(""), list("pods")))},
			clusterRoleBindings: []*rbacv1.ClusterRoleBinding{
				clusterRoleBinding("web", "pods", serviceAccount("shop", "web")),
			},
		}, []string{`ServiceAccount shop/web gains get, list of pods in every namespace`}, []bool{false}},
		{"a user loses every resource", objects{
			clusterRoles: []*rbacv1.ClusterRole{readAll},
			roleBindings: []*rbacv1.RoleBinding{roleBinding("prod", "bob", "ClusterRole", "read-all", user("bob"))},
		}, objects{clusterRoles: []*rbacv1.ClusterRole{readAll}},
			[]string{`user "bob" loses read of every resource in namespace prod`}, []bool{true}},
		{"from a RoleBinding to a ClusterRoleBinding: a wider gain, no loss", base, objects{
			clusterRoles:        []*rbacv1.ClusterRole{clusterRole("pod-reader", nil, podReader.Rules...)},
			clusterRoleBindings: []*rbacv1.ClusterRoleBinding{clusterRoleBinding("pods", "pod-reader", group("team-a"))},
		}, []string{`group "team-a" gains read of pods in every namespace`}, []bool{false}},
		{"a wider gain hides the narrower", objects{}, withBinding(objects{
			roles:               []*rbacv1.Role{podReader},
			clusterRoleBindings: []*rbacv1.ClusterRoleBinding{clusterRoleBinding("root", "cluster-admin", user("carol"))},
		}, roleBinding("shop", "pods", "Role", "pod-reader", user("carol"))),
			[]string{
				`user "carol" gains every verb of every non-resource URL`,
				`user "carol" gains every verb of every resource in every namespace`,
			}, []bool{true, true}},
		{"verbs gained and lost", base, objects{
			roles:        []*rbacv1.Role{role("shop", "pod-reader", rule(list("get", "delete"), list(""), list("pods")))},
			roleBindings: base.roleBindings,
		}, []string{
			`group "team-a" gains delete of pods in namespace shop`,
			`group "team-a" loses list, watch of pods in namespace shop`,
		}, []bool{false, false}},
		{"named objects, other groups, URLs", objects{}, objects{
			roles: []*rbacv1.Role{role("shop", "db", rbacv1.PolicyRule{Verbs: list("get"), APIGroups: list(""),
				Resources: list("secrets"), ResourceNames: list("db", "cache")})},
			clusterRoles: []*rbacv1.ClusterRole{clusterRole("deploy", nil,
				rule(list("update"), list("apps"), list("deployments/scale")), urlRule(list("get"), "/metrics"))},
			roleBindings: []*rbacv1.RoleBinding{roleBinding("shop", "db", "Role", "db", serviceAccount("", "web"))},
			clusterRoleBindings: []*rbacv1.ClusterRoleBinding{
				clusterRoleBinding("deploy", "deploy", user(rbac.ServiceAccountUsername("ci", "deployer"))),
			},
		}, []string{
			`ServiceAccount shop/web gains get of secrets "cache" in namespace shop`,
			`ServiceAccount shop/web gains get of secrets "db" in namespace shop`,
			`ServiceAccount ci/deployer gains get of /metrics`,
			`ServiceAccount ci/deployer gains update of deployments.apps/scale in every namespace`,
		}, []bool{true, true, false, false}},
		{"a binding to a missing role changes nothing", objects{}, objects{
			roleBindings: []*rbacv1.RoleBinding{roleBinding("shop", "x", "Role", "gone", user("dave"))},
		}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := rbac.Diff(tt.before.policy(), tt.after.policy())
			var got []string
			var sensitive []bool
			for _, c := range changes {
				got = append(got, c.String())
				sensitive = append(sensitive, c.Sensitive())
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(sensitive, tt.sensitive) {
				t.Errorf("Diff =\n%q %v\nwant\n%q %v", got, sensitive, tt.want, tt.sensitive)
			}
		})
	}
}

func TestDiffFields(t *testing.T) {
	before := objects{roles: []*rbacv1.Role{role("shop", "secret-reader", rule(readVerbs, list(""), list("secrets")))}}
	after := before
	after.roleBindings = []*rbacv1.RoleBinding{roleBinding("shop", "secrets", "Role", "secret-reader", group("team-a"))}
	got := rbac.Diff(before.policy(), after.policy())
	want := rbac.Change{Subject: `group "team-a"`, Gains: true, Verbs: readVerbs, Resource: "secrets", Namespace: "shop"}
	if len(got) != 1 || got[0].String() != want.String() || !slices.Equal(got[0].Verbs, want.Verbs) ||
		got[0].Subject != want.Subject || got[0].Resource != want.Resource || got[0].Namespace != want.Namespace ||
		got[0].APIGroup != "" || got[0].NonResourceURL != "" || got[0].ResourceName != "" {
		t.Errorf("Diff = %#v, want [%#v]", got, want)
	}
	if back := rbac.Diff(after.policy(), before.policy()); len(back) != 1 || back[0].Gains {
		t.Errorf("Diff back = %#v, want one loss", back)
	}
	if nilDiff := rbac.Diff(nil, rbac.NewPolicy(nil, nil, nil, nil)); len(nilDiff) != 0 {
		t.Errorf("Diff(nil, defaults) = %v, want none", nilDiff)
	}
}

func TestChange(t *testing.T) {
	tests := []struct {
		change    rbac.Change
		want      string
		sensitive bool
	}{
		{rbac.Change{Subject: `group "team-a"`, Gains: true, Verbs: readVerbs, Resource: "secrets", Namespace: "shop"},
			`group "team-a" gains read of secrets in namespace shop`, true},
		{rbac.Change{Subject: `user "bob"`, Verbs: readVerbs, APIGroup: "*", Resource: "*", Namespace: "prod"},
			`user "bob" loses read of every resource in namespace prod`, true},
		{rbac.Change{Subject: `user "bob"`, Gains: true, Verbs: list("get"), Resource: "*"},
			`user "bob" gains get of every resource of the core API group in every namespace`, true},
		{rbac.Change{Subject: `user "bob"`, Gains: true, Verbs: list("list"), APIGroup: "apps", Resource: "*"},
			`user "bob" gains list of every resource of API group apps in every namespace`, true},
		{rbac.Change{Subject: `user "bob"`, Gains: true, Verbs: list("*"), Resource: "pods"},
			`user "bob" gains every verb of pods in every namespace`, true},
		{rbac.Change{Subject: "ServiceAccount shop/web", Gains: true, Verbs: list("get", "list", "watch"), Resource: "pods"},
			`ServiceAccount shop/web gains read of pods in every namespace`, false},
		{rbac.Change{Subject: "ServiceAccount shop/web", Gains: true, Verbs: list("get", "list"), APIGroup: "*", Resource: "pods"},
			`ServiceAccount shop/web gains get, list of pods of every API group in every namespace`, false},
		{rbac.Change{Subject: `user "bob"`, Gains: true, Verbs: list("get"), APIGroup: "*", Resource: "*/status", Namespace: "shop"},
			`user "bob" gains get of the status subresource of every resource in namespace shop`, false},
		{rbac.Change{Subject: `user "bob"`, Gains: true, Verbs: list("create"), APIGroup: "apps", Resource: "deployments/scale", Namespace: "shop"},
			`user "bob" gains create of deployments.apps/scale in namespace shop`, false},
		{rbac.Change{Subject: `user "bob"`, Gains: true, Verbs: list("get"), Resource: "configmaps", ResourceName: "app", Namespace: "shop"},
			`user "bob" gains get of configmaps "app" in namespace shop`, false},
		{rbac.Change{Subject: `user "bob"`, Verbs: list("get"), NonResourceURL: "/logs/*"},
			`user "bob" loses get of /logs/*`, false},
		{rbac.Change{Subject: `user "bob"`, Gains: true, Verbs: list("get"), NonResourceURL: "*"},
			`user "bob" gains get of every non-resource URL`, true},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.change.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := tt.change.Sensitive(); got != tt.sensitive {
				t.Errorf("Sensitive() = %v, want %v", got, tt.sensitive)
			}
		})
	}
}
