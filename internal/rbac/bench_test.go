package rbac_test

import (
	"fmt"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/keelson/keelson/internal/rbac"
)

// BenchmarkAuthorize: 1,000 RoleBindings across 100 namespaces and 50
// ClusterRoleBindings, a user in a few groups, requests that are allowed
// by a RoleBinding, by a default ClusterRoleBinding, and denied.
func BenchmarkAuthorize(b *testing.B) {
	var o objects
	o.clusterRoles = []*rbacv1.ClusterRole{
		clusterRole("pod-reader", nil, rule(readVerbs, list(""), list("pods", "pods/log"))),
		clusterRole("node-reader", nil, rule(readVerbs, list(""), list("nodes"))),
	}
	for i := range 1000 {
		ns := fmt.Sprintf("ns-%d", i%100)
		var subject rbacv1.Subject
		switch i % 3 {
		case 0:
			subject = user(fmt.Sprintf("user-%d", i))
		case 1:
			subject = group(fmt.Sprintf("team-%d", i%20))
		default:
			subject = serviceAccount("", fmt.Sprintf("sa-%d", i))
		}
		if i%10 == 0 {
			o.roles = append(o.roles, role(ns, "deployer", rule(list("*"), list("apps"), list("deployments"))))
			o.roleBindings = append(o.roleBindings, roleBinding(ns, fmt.Sprintf("rb-%d", i), "Role", "deployer", subject))
			continue
		}
		o.roleBindings = append(o.roleBindings, roleBinding(ns, fmt.Sprintf("rb-%d", i), "ClusterRole", "view", subject))
	}
	for i := range 50 {
		o.clusterRoleBindings = append(o.clusterRoleBindings,
			clusterRoleBinding(fmt.Sprintf("crb-%d", i), "node-reader", group(fmt.Sprintf("ops-%d", i))))
	}
	p := o.policy()
	groups := []string{"system:authenticated", "team-7", "team-13", "ops-49"}
	requests := []struct {
		name string
		a    rbac.Attributes
		want bool
	}{
		{"RoleBinding to group", as(resource("list", "ns-27", "", "pods", "", ""), "user-x", groups...), true},
		{"ClusterRoleBinding", as(resource("get", "", "", "nodes", "", "n1"), "user-x", groups...), true},
		{"default", as(nonResource("get", "/version"), "user-x", groups...), true},
		{"denied", as(resource("get", "ns-27", "", "secrets", "", "db"), "user-x", groups...), false},
	}
	for _, r := range requests {
		if got, reason := p.Authorize(r.a); got != r.want {
			b.Fatalf("%s: Authorize = %v, %s", r.name, got, reason)
		}
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Authorize(r.a)
			}
		})
	}
}
