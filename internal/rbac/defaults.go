package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations of upstream's bootstrap policy.
const (
	bootstrappingLabel = "kubernetes.io/bootstrapping"
	autoupdate         = "rbac.authorization.kubernetes.io/autoupdate"
	aggregateToAdmin   = "rbac.authorization.k8s.io/aggregate-to-admin"
	aggregateToEdit    = "rbac.authorization.k8s.io/aggregate-to-edit"
	aggregateToView    = "rbac.authorization.k8s.io/aggregate-to-view"
)

var (
	read      = []string{"get", "list", "watch"}
	write     = []string{"create", "delete", "deletecollection", "patch", "update"}
	readWrite = append(append([]string{}, read...), write...)
)

// DefaultClusterRoles returns keelson's built-in ClusterRoles, sorted by
// name: upstream's bootstrap roles people bind to (cluster-admin, admin,
// edit, view and the system:aggregate-to-* roles they aggregate) and
// those the default bindings refer to (system:discovery,
// system:basic-user, system:monitoring, system:public-info-viewer), plus
// system:auth-delegator. Their rules are upstream's, shortened: the
// extensions group, which Kubernetes no longer serves, is left out, and
// so are the roles of upstream's own components. Each call returns new
// objects.
func DefaultClusterRoles() []*rbacv1.ClusterRole {
	return []*rbacv1.ClusterRole{
		aggregatedRole("admin", aggregateToAdmin, nil),
		clusterRole("cluster-admin", nil,
			rule([]string{"*"}, []string{"*"}, "*"),
			urls([]string{"*"}, "*")),
		aggregatedRole("edit", aggregateToEdit, map[string]string{aggregateToAdmin: "true"}),
		clusterRole("system:aggregate-to-admin", map[string]string{aggregateToAdmin: "true"},
			rule([]string{"create"}, []string{"authorization.k8s.io"}, "localsubjectaccessreviews"),
			rule(readWrite, []string{"rbac.authorization.k8s.io"}, "rolebindings", "roles")),
		clusterRole("system:aggregate-to-edit", map[string]string{aggregateToEdit: "true"}, editRules()...),
		clusterRole("system:aggregate-to-view", map[string]string{aggregateToView: "true"}, viewRules()...),
		clusterRole("system:auth-delegator", nil,
			rule([]string{"create"}, []string{"authentication.k8s.io"}, "tokenreviews"),
			rule([]string{"create"}, []string{"authorization.k8s.io"}, "subjectaccessreviews")),
		clusterRole("system:basic-user", nil,
			rule([]string{"create"}, []string{"authorization.k8s.io"}, "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
			rule([]string{"create"}, []string{"authentication.k8s.io"}, "selfsubjectreviews")),
		clusterRole("system:discovery", nil,
			urls([]string{"get"}, "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
				"/openapi", "/openapi/*", "/readyz", "/version", "/version/")),
		clusterRole("system:monitoring", nil,
			urls([]string{"get"}, "/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis", "/readyz", "/readyz/*")),
		clusterRole("system:public-info-viewer", nil,
			urls([]string{"get"}, "/healthz", "/livez", "/readyz", "/version", "/version/")),
		aggregatedRole("view", aggregateToView, map[string]string{aggregateToEdit: "true"}),
	}
}

// viewRules read the common namespaced objects, never Secrets: reading a
// Secret is reading the credentials it holds.
func viewRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(read, []string{""}, "configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
			"pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/status"),
		rule(read, []string{""}, "bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
			"replicationcontrollers/status", "resourcequotas", "resourcequotas/status"),
		// Through a RoleBinding, the namespace of the binding only.
		rule(read, []string{""}, "namespaces"),
		rule(read, []string{"discovery.k8s.io"}, "endpointslices"),
		rule(read, []string{"apps"}, "controllerrevisions", "daemonsets", "daemonsets/status",
			"deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
			"statefulsets", "statefulsets/scale", "statefulsets/status"),
		rule(read, []string{"autoscaling"}, "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
		rule(read, []string{"batch"}, "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
		rule(read, []string{"policy"}, "poddisruptionbudgets", "poddisruptionbudgets/status"),
		rule(read, []string{"networking.k8s.io"}, "ingresses", "ingresses/status", "networkpolicies"),
	}
}

// editRules add to view's the reading of Secrets and of pods' escalating
// subresources, and writes, as upstream's; keelson's API refuses writes
// that are not its own anyway.
func editRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(read, []string{""}, "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"),
		rule([]string{"impersonate"}, []string{""}, "serviceaccounts"),
		rule(write, []string{""}, "pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"),
		rule([]string{"create"}, []string{""}, "pods/eviction", "serviceaccounts/token"),
		rule(write, []string{""}, "configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
			"replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"),
		rule(write, []string{"apps"}, "daemonsets", "deployments", "deployments/rollback", "deployments/scale",
			"replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"),
		rule(write, []string{"autoscaling"}, "horizontalpodautoscalers"),
		rule(write, []string{"batch"}, "cronjobs", "jobs"),
		rule(write, []string{"policy"}, "poddisruptionbudgets"),
		rule(write, []string{"networking.k8s.io"}, "ingresses", "networkpolicies"),
	}
}

// DefaultClusterRoleBindings returns keelson's built-in
// ClusterRoleBindings, those of upstream's bootstrap policy for the roles
// of DefaultClusterRoles, sorted by name. Each call returns new objects.
func DefaultClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	return []*rbacv1.ClusterRoleBinding{
		clusterRoleBinding("cluster-admin", "system:masters"),
		clusterRoleBinding("system:basic-user", "system:authenticated"),
		clusterRoleBinding("system:discovery", "system:authenticated"),
		clusterRoleBinding("system:monitoring", "system:monitoring"),
		clusterRoleBinding("system:public-info-viewer", "system:authenticated", "system:unauthenticated"),
	}
}

func rule(verbs, groups []string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: clone(verbs), APIGroups: clone(groups), Resources: resources}
}

func urls(verbs []string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: clone(verbs), NonResourceURLs: urls}
}

// clone keeps the shared verb lists out of the roles handed out.
func clone(s []string) []string { return append([]string(nil), s...) }

func defaultMeta(name string, labels map[string]string) metav1.ObjectMeta {
	l := map[string]string{bootstrappingLabel: "rbac-defaults"}
	for k, v := range labels {
		l[k] = v
	}
	return metav1.ObjectMeta{Name: name, Labels: l, Annotations: map[string]string{autoupdate: "true"}}
}

func clusterRole(name string, labels map[string]string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: defaultMeta(name, labels),
		Rules:      rules,
	}
}

// aggregatedRole selects the roles labelled selectLabel: "true".
func aggregatedRole(name, selectLabel string, labels map[string]string) *rbacv1.ClusterRole {
	cr := clusterRole(name, labels)
	cr.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
		{MatchLabels: map[string]string{selectLabel: "true"}},
	}}
	return cr
}

func clusterRoleBinding(role string, groups ...string) *rbacv1.ClusterRoleBinding {
	crb := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: defaultMeta(role, nil),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
	}
	for _, g := range groups {
		crb.Subjects = append(crb.Subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g})
	}
	return crb
}
