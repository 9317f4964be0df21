package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/internal/rbac"
	"github.com/keelson/keelson/store"
)

// Who reads what is decided, in this order, by: group system:masters (all),
// node agents (what their pods need), the authorization file's grants (the
// bootstrap, outside Git), and RBAC from Git (Roles, ClusterRoles and their
// bindings, with Kubernetes' semantics and default ClusterRoles). Anything
// none of them allows is refused, as in Kubernetes.

var rbacResources = [4]store.Resource{
	store.MustResource("roles.rbac.authorization.k8s.io"),
	store.MustResource("clusterroles.rbac.authorization.k8s.io"),
	store.MustResource("rolebindings.rbac.authorization.k8s.io"),
	store.MustResource("clusterrolebindings.rbac.authorization.k8s.io"),
}

// rbacState is the RBAC policy as of the watch caches' generations it was
// built from.
type rbacState struct {
	once   sync.Once
	caches [4]*cache

	mu     sync.Mutex
	gens   [4]uint64
	policy *rbac.Policy
}

// rbacPolicy returns the policy of the RBAC objects in the store, building
// it again only when one of them changed.
func (s *Server) rbacPolicy(ctx context.Context) (*rbac.Policy, error) {
	st := &s.rbac
	st.once.Do(func() {
		for i, res := range rbacResources {
			st.caches[i] = s.cacheFor(res)
		}
	})
	caches := st.caches
	var gens [4]uint64
	for i, c := range caches {
		g, ready := c.generation()
		if !ready {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.waitReady(wctx)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("the %s cache is not ready: %w", rbacResources[i].Plural, err)
			}
			g, _ = c.generation()
		}
		gens[i] = g
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.policy != nil && st.gens == gens {
		return st.policy, nil
	}
	var (
		roles   []*rbacv1.Role
		croles  []*rbacv1.ClusterRole
		rbs     []*rbacv1.RoleBinding
		crbs    []*rbacv1.ClusterRoleBinding
		entries [4][]*entry
	)
	for i, c := range caches {
		entries[i], gens[i] = c.all()
	}
	for _, e := range entries[0] {
		roles = append(roles, e.obj.(*rbacv1.Role))
	}
	for _, e := range entries[1] {
		croles = append(croles, e.obj.(*rbacv1.ClusterRole))
	}
	for _, e := range entries[2] {
		rbs = append(rbs, e.obj.(*rbacv1.RoleBinding))
	}
	for _, e := range entries[3] {
		crbs = append(crbs, e.obj.(*rbacv1.ClusterRoleBinding))
	}
	st.policy, st.gens = rbac.NewPolicy(roles, croles, rbs, crbs), gens
	return st.policy, nil
}

// attributes are what RBAC sees of a resource request.
func attributes(u *User, q *request) rbac.Attributes {
	a := rbac.Attributes{User: u.Name, Groups: u.Groups, Verb: q.verb, ResourceRequest: true,
		Namespace: q.namespace, APIGroup: q.res.GVK.Group, Resource: q.res.Plural, Subresource: q.subresource, Name: q.name}
	if q.res.Plural == "namespaces" && q.res.GVK.Group == "" && q.name != "" {
		// As in Kubernetes, a namespace object is in itself: a RoleBinding
		// there may grant reading it.
		a.Namespace = q.name
	}
	return a
}

// authorized says whether u may do what a asks, and why not. Only reads
// reach it: writes are the agents' alone (node restriction).
func (s *Server) authorized(ctx context.Context, u *User, a rbac.Attributes) (bool, string) {
	if u.InGroup(GroupMasters) {
		return true, ""
	}
	if _, ok := u.NodeName(); ok {
		// Agents read the pods bound to them and the config maps and secret
		// values those pods use, wherever they are.
		return true, ""
	}
	if a.ResourceRequest && s.granted(u, a.Namespace) {
		return true, ""
	}
	p, err := s.rbacPolicy(ctx)
	if err != nil {
		s.log.Warn("authorization", "err", err)
		return false, "the RBAC policy cannot be read now: " + err.Error()
	}
	return p.Authorize(a)
}

// granted says whether the authorization file lets u read in namespace
// ("" means every namespace, or a cluster-scoped kind).
func (s *Server) granted(u *User, namespace string) bool {
	return s.grantedWith(u, namespace, false)
}

// grantedWith is granted, of secret values too when secrets is set.
func (s *Server) grantedWith(u *User, namespace string, secrets bool) bool {
	if s.cfg.Grants == nil {
		return false
	}
	return slices.ContainsFunc(s.cfg.Grants.Grants, func(g Grant) bool {
		return (g.Secrets || !secrets) && g.applies(u) && g.covers(namespace)
	})
}

// authorizeRead returns a 403 Status unless u may read q. The reason goes to
// the server's log and, since it names only the caller's own bindings, to
// the caller.
func (s *Server) authorizeRead(ctx context.Context, u *User, q *request) error {
	a := attributes(u, q)
	ok, reason := s.authorized(ctx, u, a)
	if ok {
		return nil
	}
	where := "in every namespace"
	switch {
	case a.Namespace != "":
		where = "in namespace " + a.Namespace
	case !q.res.Namespaced:
		where = "at the cluster scope"
	}
	what := q.res.Plural
	if q.res.GVK.Group != "" {
		what += "." + q.res.GVK.Group
	}
	if q.subresource != "" {
		what += "/" + q.subresource
	}
	s.log.Info("request forbidden", "user", u.Name, "verb", q.verb, "resource", what, "namespace", q.namespace, "name", q.name, "reason", reason)
	return apierrors.NewForbidden(q.groupResource(), q.name,
		fmt.Errorf("user %q cannot %s %s %s: %s; access is granted by RBAC objects in Git (a Role or ClusterRole and a RoleBinding or ClusterRoleBinding naming the user, a group or the ServiceAccount)", u.Name, q.verb, what, where, reason))
}

// authorizePath serves h to callers RBAC lets get the request's path (a
// nonResourceURLs rule, as system:monitoring's for /metrics).
func (s *Server) authorizePath(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := userFrom(r.Context())
		if u == nil {
			writeStatus(w, apierrors.NewUnauthorized("a bearer token is needed"))
			return
		}
		ok, reason := s.authorized(r.Context(), u, rbac.Attributes{User: u.Name, Groups: u.Groups, Verb: "get", Path: r.URL.Path})
		if !ok {
			s.log.Info("request forbidden", "user", u.Name, "path", r.URL.Path, "reason", reason)
			writeStatus(w, apierrors.NewForbidden(schema.GroupResource{}, "", fmt.Errorf("user %q cannot get path %q: %s", u.Name, r.URL.Path, reason)))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// forbiddenRead is the 403 of a read outside the resource API (metrics).
func (s *Server) forbiddenRead(ctx context.Context, u *User, gr schema.GroupResource, verb, namespace, name string) error {
	q := &request{verb: verb, namespace: namespace, name: name,
		res: store.Resource{Plural: gr.Resource, Namespaced: namespace != ""}}
	q.res.GVK.Group = gr.Group
	return s.authorizeRead(ctx, u, q)
}

// secretsView returns whether u may see the values of the secrets q reads,
// by namespace: with a grant of secrets in the authorization file, or when
// RBAC lets u do what q does (the same verb and name) to secrets there. A
// grant without secrets lets u read them, values hidden.
func (s *Server) secretsView(ctx context.Context, u *User, q *request) func(string) bool {
	if u.InGroup(GroupMasters) {
		return func(string) bool { return true }
	}
	if _, ok := u.NodeName(); ok {
		return func(string) bool { return true }
	}
	var policy *rbac.Policy // read once, on the first secret
	return func(ns string) bool {
		if s.grantedWith(u, ns, true) {
			return true
		}
		if policy == nil {
			p, err := s.rbacPolicy(ctx)
			if err != nil {
				return false
			}
			policy = p
		}
		ok, _ := policy.Authorize(rbac.Attributes{User: u.Name, Groups: u.Groups, Verb: q.verb, ResourceRequest: true,
			Namespace: ns, Resource: "secrets", Name: q.name})
		return ok
	}
}
