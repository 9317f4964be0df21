package rbac

import (
	"maps"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/component-helpers/auth/rbac/validation"
)

// Diff compares what every subject named by either policy's bindings may
// do, and returns what each gains and loses, sorted, sensitive first.
//
// A subject is compared by the bindings that name it: a user's changes do
// not include those of its groups, which are reported for the groups. A
// ServiceAccount and a User subject of its user name are one subject.
//
// Rules are broken down to one verb, group, resource (and resource name
// or non-resource URL) each, as upstream's escalation check does. What a
// policy grants is gained if the other's rules in that scope do not cover
// it, and lost the other way round; so moving a grant from RoleBindings to
// a ClusterRoleBinding is a gain of the wider scope and no loss. Wildcards
// are compared as they are written: a rule for resource "*" is reported as
// Resource "*", and covers, but is not covered by, rules for single
// resources. Of the changes, those covered by a wider one of the same
// subject are left out.
//
// A nil policy stands for one made of no objects: keelson's defaults only.
func Diff(before, after *Policy) []Change {
	if before == nil {
		before = NewPolicy(nil, nil, nil, nil)
	}
	if after == nil {
		after = NewPolicy(nil, nil, nil, nil)
	}
	bg, ag := before.grantsBySubject(), after.grantsBySubject()
	keys := map[subjectKey]bool{}
	for k := range bg {
		keys[k] = true
	}
	for k := range ag {
		keys[k] = true
	}
	var out []Change
	for k := range keys {
		b, a := bg[k], ag[k]
		if b == nil {
			b = &subjectGrants{}
		}
		if a == nil {
			a = &subjectGrants{}
		}
		out = append(out, diffSubject(k, b, a)...)
	}
	slices.SortFunc(out, compareChanges)
	return out
}

// subjectGrants are the rules granted to one subject.
type subjectGrants struct {
	cluster []rbacv1.PolicyRule            // by ClusterRoleBindings
	local   map[string][]rbacv1.PolicyRule // by RoleBindings, by namespace
}

// granted returns the rules granted in scope ("" for a cluster-wide grant).
func (g *subjectGrants) granted(scope string) []rbacv1.PolicyRule {
	if scope == "" {
		return g.cluster
	}
	return g.local[scope]
}

// holds returns the rules that apply in scope.
func (g *subjectGrants) holds(scope string) []rbacv1.PolicyRule {
	if scope == "" {
		return g.cluster
	}
	return append(slices.Clip(g.cluster), g.local[scope]...)
}

func (p *Policy) grantsBySubject() map[subjectKey]*subjectGrants {
	out := map[subjectKey]*subjectGrants{}
	get := func(k subjectKey) *subjectGrants {
		g := out[k]
		if g == nil {
			g = &subjectGrants{local: map[string][]rbacv1.PolicyRule{}}
			out[k] = g
		}
		return g
	}
	for k, gs := range p.cluster {
		g := get(k)
		for _, gr := range gs {
			g.cluster = append(g.cluster, gr.b.rules...)
		}
	}
	for ns, ix := range p.byNamespace {
		for k, gs := range ix {
			g := get(k)
			for _, gr := range gs {
				g.local[ns] = append(g.local[ns], gr.b.rules...)
			}
		}
	}
	return out
}

// atom is a rule broken down to one of each, as validation.BreakdownRule
// makes them.
type atom struct {
	nonResource bool
	verb        string
	group       string
	resource    string
	name        string
	url         string
}

func diffSubject(k subjectKey, before, after *subjectGrants) []Change {
	scopes := []string{""}
	for _, ns := range slices.Sorted(maps.Keys(before.local)) {
		scopes = append(scopes, ns)
	}
	for _, ns := range slices.Sorted(maps.Keys(after.local)) {
		if _, ok := before.local[ns]; !ok {
			scopes = append(scopes, ns)
		}
	}
	gained, lost := map[string][]atom{}, map[string][]atom{}
	for _, s := range scopes {
		gained[s] = uncovered(after.granted(s), before.holds(s))
		lost[s] = uncovered(before.granted(s), after.holds(s))
	}
	changes := toChanges(k, true, scopes, widest(scopes, gained))
	return append(changes, toChanges(k, false, scopes, widest(scopes, lost))...)
}

// uncovered returns the atoms of granted that no rule of held covers,
// without duplicates.
func uncovered(granted, held []rbacv1.PolicyRule) []atom {
	if len(granted) == 0 {
		return nil
	}
	_, missing := validation.Covers(held, granted)
	var out []atom
	seen := map[atom]bool{}
	for _, r := range missing {
		a := atom{verb: r.Verbs[0]}
		if len(r.NonResourceURLs) > 0 {
			a.nonResource, a.url = true, r.NonResourceURLs[0]
		} else {
			a.group, a.resource = r.APIGroups[0], r.Resources[0]
			if len(r.ResourceNames) > 0 {
				a.name = r.ResourceNames[0]
			}
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// widest leaves out the atoms another covers: in the same scope, or
// cluster-wide. Of two atoms that cover each other ("/a*" and "/a**") the
// later stays.
func widest(scopes []string, atoms map[string][]atom) map[string][]atom {
	out := map[string][]atom{}
	for _, s := range scopes { // "" first
		as := atoms[s]
		keep := make([]bool, len(as))
		for i := range as {
			keep[i] = true
		}
		for i, a := range as {
			covered := s != "" && slices.ContainsFunc(out[""], func(w atom) bool { return w.covers(a) })
			for j := 0; j < len(as) && !covered; j++ {
				covered = j != i && keep[j] && as[j].covers(a)
			}
			keep[i] = !covered
		}
		for i, a := range as {
			if keep[i] {
				out[s] = append(out[s], a)
			}
		}
	}
	return out
}

// covers is upstream's ruleCovers (component-helpers' validation) for one
// atom by another.
func (a atom) covers(b atom) bool {
	if a.nonResource != b.nonResource || (a.verb != rbacv1.VerbAll && a.verb != b.verb) {
		return false
	}
	if a.nonResource {
		return urlCovers(a.url, b.url)
	}
	if (a.group != rbacv1.APIGroupAll && a.group != b.group) || (a.name != "" && a.name != b.name) {
		return false
	}
	if a.resource == rbacv1.ResourceAll || a.resource == b.resource {
		return true
	}
	_, sub, ok := strings.Cut(b.resource, "/")
	return ok && a.resource == "*/"+sub
}

// toChanges gathers the verbs of the atoms that differ only by verb into
// one Change.
func toChanges(k subjectKey, gains bool, scopes []string, atoms map[string][]atom) []Change {
	var out []Change
	for _, s := range scopes {
		at := map[atom]int{} // the atom without verb → its Change in out
		for _, a := range atoms[s] {
			verb := a.verb
			a.verb = ""
			i, ok := at[a]
			if !ok {
				i = len(out)
				at[a] = i
				c := Change{Subject: k.label(), Gains: gains, Namespace: s}
				if a.nonResource {
					c.NonResourceURL = a.url
				} else {
					c.APIGroup, c.Resource, c.ResourceName = a.group, a.resource, a.name
				}
				out = append(out, c)
			}
			out[i].Verbs = append(out[i].Verbs, verb)
		}
	}
	for i := range out {
		slices.Sort(out[i].Verbs)
		out[i].Verbs = slices.Compact(out[i].Verbs)
	}
	return out
}
