package rbac

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Policy is an immutable, indexed snapshot of RBAC objects plus keelson's
// defaults. It is safe for concurrent use.
//
// Bindings are resolved to their roles' rules when the snapshot is made,
// and indexed by scope and by the subjects they name, so that Authorize
// reads only the bindings that name the user or one of its groups in the
// cluster and in the request's namespace.
type Policy struct {
	cluster     index            // ClusterRoleBindings
	byNamespace map[string]index // RoleBindings, by their namespace
}

// index holds the grants of one scope by the subject they name.
type index map[subjectKey][]grant

// subjectKey is who a binding's subject applies to: a group, or a user
// name. A ServiceAccount subject is its user name, as upstream matches it.
type subjectKey struct {
	group bool
	name  string
}

// grant is one binding naming one subject.
type grant struct {
	b       *binding
	subject int // in b.subjects
}

// binding is a RoleBinding or ClusterRoleBinding with its role resolved.
type binding struct {
	kind      string // "RoleBinding" or "ClusterRoleBinding"
	namespace string // "" for a ClusterRoleBinding
	name      string
	roleRef   rbacv1.RoleRef
	subjects  []rbacv1.Subject
	// rules of the role, shared by every binding of the role: never
	// modified. A RoleBinding's have no non-resource URLs.
	rules []rbacv1.PolicyRule
	// problem says why the binding grants nothing: its role is missing,
	// or of a kind it cannot refer to.
	problem string
}

// NewPolicy returns the snapshot of the objects plus keelson's defaults
// (DefaultClusterRoles, DefaultClusterRoleBindings). A ClusterRole or
// ClusterRoleBinding named as a default replaces it. Of objects with the
// same name (and namespace) the last counts; nil entries, and Roles and
// RoleBindings without a namespace, are skipped. The objects are copied:
// changing them later does not change the policy.
func NewPolicy(roles []*rbacv1.Role, clusterRoles []*rbacv1.ClusterRole, roleBindings []*rbacv1.RoleBinding, clusterRoleBindings []*rbacv1.ClusterRoleBinding) *Policy {
	b := newBuilder(roles, clusterRoles)
	p := &Policy{cluster: index{}, byNamespace: map[string]index{}}
	crbs := map[string]*rbacv1.ClusterRoleBinding{}
	for _, crb := range DefaultClusterRoleBindings() {
		crbs[crb.Name] = crb
	}
	for _, crb := range clusterRoleBindings {
		if crb != nil {
			crbs[crb.Name] = crb
		}
	}
	for _, name := range slices.Sorted(maps.Keys(crbs)) {
		crb := crbs[name]
		p.cluster.add(b.resolve(&binding{kind: "ClusterRoleBinding", name: name, roleRef: crb.RoleRef,
			subjects: slices.Clone(crb.Subjects)}))
	}
	rbs := map[nsName]*rbacv1.RoleBinding{}
	for _, rb := range roleBindings {
		if rb != nil && rb.Namespace != "" {
			rbs[nsName{rb.Namespace, rb.Name}] = rb
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(rbs), compareNsName) {
		rb := rbs[k]
		ix := p.byNamespace[k.namespace]
		if ix == nil {
			ix = index{}
			p.byNamespace[k.namespace] = ix
		}
		ix.add(b.resolve(&binding{kind: "RoleBinding", namespace: k.namespace, name: k.name, roleRef: rb.RoleRef,
			subjects: slices.Clone(rb.Subjects)}))
	}
	return p
}

type nsName struct{ namespace, name string }

func compareNsName(a, b nsName) int {
	return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
}

// builder resolves bindings to the rules of their roles.
type builder struct {
	roles        map[nsName][]rbacv1.PolicyRule
	clusterRoles map[string][]rbacv1.PolicyRule // aggregated
	// localRules caches ClusterRoles' rules without non-resource URLs,
	// as a RoleBinding grants them.
	localRules map[string][]rbacv1.PolicyRule
}

func newBuilder(roles []*rbacv1.Role, clusterRoles []*rbacv1.ClusterRole) *builder {
	b := &builder{
		roles:      map[nsName][]rbacv1.PolicyRule{},
		localRules: map[string][]rbacv1.PolicyRule{},
	}
	for _, r := range roles {
		if r != nil && r.Namespace != "" {
			b.roles[nsName{r.Namespace, r.Name}] = withoutURLs(r.DeepCopy().Rules)
		}
	}
	crs := map[string]*rbacv1.ClusterRole{}
	for _, cr := range DefaultClusterRoles() {
		crs[cr.Name] = cr
	}
	for _, cr := range clusterRoles {
		if cr != nil {
			crs[cr.Name] = cr.DeepCopy()
		}
	}
	b.clusterRoles = aggregate(crs)
	return b
}

// resolve sets the rules bd grants, or its problem, as upstream's rule
// resolver finds them: a RoleBinding's Role in its own namespace, or a
// ClusterRole.
func (b *builder) resolve(bd *binding) *binding {
	ref := bd.roleRef
	cluster := bd.kind == "ClusterRoleBinding"
	var ok bool
	switch {
	case ref.Kind == "ClusterRole" && cluster:
		bd.rules, ok = b.clusterRoles[ref.Name]
	case ref.Kind == "ClusterRole":
		bd.rules, ok = b.localRules[ref.Name]
		if !ok {
			bd.rules, ok = b.clusterRoles[ref.Name]
			if ok {
				bd.rules = withoutURLs(bd.rules)
				b.localRules[ref.Name] = bd.rules
			}
		}
	case ref.Kind == "Role" && cluster:
		bd.problem = fmt.Sprintf("%s refers to Role %q, but a ClusterRoleBinding can only refer to a ClusterRole", bd.ref(), ref.Name)
		return bd
	case ref.Kind == "Role":
		bd.rules, ok = b.roles[nsName{bd.namespace, ref.Name}]
	default:
		bd.problem = fmt.Sprintf("%s refers to a role of kind %q, which is neither Role nor ClusterRole", bd.ref(), ref.Kind)
		return bd
	}
	if !ok {
		bd.problem = fmt.Sprintf("%s refers to %s %q, which does not exist", bd.ref(), ref.Kind, ref.Name)
	}
	return bd
}

// withoutURLs returns rules without their non-resource URLs, which a
// RoleBinding never grants. rules is not modified.
func withoutURLs(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	if !slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool { return len(r.NonResourceURLs) > 0 }) {
		return rules
	}
	out := make([]rbacv1.PolicyRule, 0, len(rules))
	for _, r := range rules {
		if len(r.NonResourceURLs) > 0 {
			if len(r.Resources) == 0 {
				continue
			}
			r.NonResourceURLs = nil
		}
		out = append(out, r)
	}
	return out
}

// ref names the binding as people write it: "RoleBinding shop/readers".
func (b *binding) ref() string {
	if b.namespace == "" {
		return b.kind + " " + b.name
	}
	return b.kind + " " + b.namespace + "/" + b.name
}

// add indexes b under every subject it applies to, following upstream's
// appliesToUser: a ServiceAccount subject without a namespace is of the
// RoleBinding's namespace, and in a ClusterRoleBinding applies to no one.
// Subjects of other kinds apply to no one.
func (ix index) add(b *binding) {
	for i, s := range b.subjects {
		var k subjectKey
		switch s.Kind {
		case rbacv1.UserKind:
			k = subjectKey{name: s.Name}
		case rbacv1.GroupKind:
			k = subjectKey{group: true, name: s.Name}
		case rbacv1.ServiceAccountKind:
			ns := cmp.Or(s.Namespace, b.namespace)
			if ns == "" {
				continue
			}
			k = subjectKey{name: ServiceAccountUsername(ns, s.Name)}
		default:
			continue
		}
		if gs := ix[k]; len(gs) > 0 && gs[len(gs)-1].b == b {
			continue // the binding names the subject twice
		}
		ix[k] = append(ix[k], grant{b: b, subject: i})
	}
}
