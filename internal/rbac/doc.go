// Package rbac evaluates Kubernetes RBAC objects (Role, ClusterRole,
// RoleBinding and ClusterRoleBinding of rbac.authorization.k8s.io/v1, as
// keelson reads them from Git): it authorizes API requests with them,
// lists the rules a user holds for SelfSubjectRulesReview, and tells what
// a change of them grants or takes away, for keelson plan.
//
// It follows upstream's semantics: those of the RBAC authorizer and rule
// resolver of kube-apiserver, of the escalation check's rule comparison
// (k8s.io/component-helpers/auth/rbac/validation, which Diff uses), and of
// the controller that aggregates ClusterRoles. In particular:
//
//   - a RoleBinding grants the rules of its Role (in its own namespace) or
//     ClusterRole in its namespace only, and never non-resource URLs; a
//     ClusterRoleBinding grants a ClusterRole's rules in every namespace,
//     on cluster-scoped resources and on non-resource URLs;
//   - a ServiceAccount subject without a namespace is of the RoleBinding's
//     namespace, and in a ClusterRoleBinding applies to no one;
//   - "pods/*" is no wildcard (as upstream, only "*/log" is), and a rule
//     with resourceNames allows no request without a name, such as list;
//   - an aggregated ClusterRole's rules are those of the roles it selects,
//     transitively; rules written in it are replaced, as upstream's
//     controller replaces them;
//   - a binding to a role that does not exist grants nothing, and the
//     reasons of denials name it.
//
// Where upstream has no opinion keelson has one: Authorize denies, and
// its reason says so. The reasons name a ServiceAccount namespace/name,
// where upstream's say name/namespace.
//
// keelson's defaults (DefaultClusterRoles, DefaultClusterRoleBindings)
// are taken from upstream's bootstrap policy
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy in Kubernetes),
// shortened to the roles people bind to and those the bootstrap bindings
// need: cluster-admin for group system:masters, discovery, basic-user and
// public-info-viewer for every user, and the aggregated admin, edit and
// view. A ClusterRole or ClusterRoleBinding from Git with a default's name
// replaces it.
//
//	p := rbac.NewPolicy(roles, clusterRoles, roleBindings, clusterRoleBindings)
//	ok, reason := p.Authorize(rbac.Attributes{
//		User: "alice", Groups: []string{"system:authenticated"},
//		Verb: "get", ResourceRequest: true, Namespace: "shop", Resource: "pods", Name: "web-0",
//	})
//	// true, RBAC: allowed by RoleBinding "shop/readers" of ClusterRole "view" to User "alice"
//
//	for _, c := range rbac.Diff(before, after) {
//		fmt.Println(c) // group "team-a" gains read of secrets in namespace shop
//	}
package rbac
