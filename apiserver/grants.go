package apiserver

import (
	"fmt"
	"os"
	"slices"

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
