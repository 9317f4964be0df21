package apiserver

import (
	"fmt"
	"os"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"
)

// Grants are the read grants of an authorization file:
//
//	grants:
//	- users: [alice]
//	  groups: [team-a]
//	  namespaces: [team-a, shared]   # or ["*"] for every namespace
//	  secrets: true                  # may read secret values there
//
// Group system:masters has every grant, and so do node agents (users
// system:node:<name> in group system:nodes). Cluster-scoped kinds need "*".
type Grants struct {
	Grants []Grant `json:"grants"`
}

// Grant is one rule: who (users or groups) may read which namespaces, and
// whether secret values too.
type Grant struct {
	Users      []string `json:"users,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	Namespaces []string `json:"namespaces"`
	Secrets    bool     `json:"secrets,omitempty"`
}

// LoadGrants reads an authorization file, rejecting unknown fields.
func LoadGrants(path string) (*Grants, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authorization file: %w", err)
	}
	var g Grants
	if err := yaml.UnmarshalStrict(b, &g); err != nil {
		return nil, fmt.Errorf("authorization file %s: %w", path, err)
	}
	for i, gr := range g.Grants {
		if len(gr.Users)+len(gr.Groups) == 0 || len(gr.Namespaces) == 0 {
			return nil, fmt.Errorf("authorization file %s: grants[%d]: needs users or groups, and namespaces", path, i)
		}
	}
	return &g, nil
}

func (g *Grant) applies(u *User) bool {
	if slices.Contains(g.Users, u.Name) {
		return true
	}
	for _, gr := range g.Groups {
		if u.InGroup(gr) {
			return true
		}
	}
	return false
}

func (g *Grant) covers(namespace string) bool {
	return slices.Contains(g.Namespaces, "*") || (namespace != "" && slices.Contains(g.Namespaces, namespace))
}

// canRead says whether u may read objects in namespace ("" means every
// namespace, or a cluster-scoped kind), and whether secret values there.
func (s *Server) canRead(u *User, namespace string) (read, secrets bool) {
	if u.InGroup(GroupMasters) {
		return true, true
	}
	if _, ok := u.NodeName(); ok {
		// Agents read the pods bound to them and the config maps and secret
		// values those pods use, wherever they are.
		return true, true
	}
	if s.cfg.Grants == nil {
		return true, false
	}
	for _, g := range s.cfg.Grants.Grants {
		if g.applies(u) && g.covers(namespace) {
			read = true
			secrets = secrets || g.Secrets
		}
	}
	return read, secrets
}

// authorizeRead returns a 403 Status unless u may read q.
func (s *Server) authorizeRead(u *User, q *request) error {
	ns := q.namespace
	if q.res.Plural == "namespaces" && q.name != "" {
		// Reading a namespace object needs a grant on that namespace.
		ns = q.name
	}
	if ok, _ := s.canRead(u, ns); !ok {
		where := "in every namespace"
		if ns != "" {
			where = "in namespace " + ns
		}
		return apierrors.NewForbidden(q.groupResource(), q.name,
			fmt.Errorf("user %q may not %s %s %s: ask for a grant in the authorization file", u.Name, q.verb, q.res.Plural, where))
	}
	return nil
}

// secretsView returns whether u may see secret values in a namespace.
func (s *Server) secretsView(u *User) func(string) bool {
	return func(ns string) bool {
		_, ok := s.canRead(u, ns)
		return ok
	}
}
