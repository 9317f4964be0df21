package rbac

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Change is one subject gaining or losing access, for review: keelson plan
// shows them as risks in a pull request.
type Change struct {
	// Subject is who gains or loses: `group "team-a"`, `user "alice"`,
	// `ServiceAccount shop/web`.
	Subject string
	// Gains is false for a loss.
	Gains bool
	// Verbs, sorted. "*" stands for every verb and is then the only one.
	Verbs []string
	// APIGroup of the resource: "" is the core group, "*" every group.
	APIGroup string
	// Resource as a rule names it: "pods", "pods/log", "*/status", or "*"
	// for every resource. "" for a non-resource URL.
	Resource string
	// ResourceName is the one object of the resource the change is about,
	// when the rule names objects (resourceNames); "" for every object.
	ResourceName string
	// NonResourceURL as a rule names it, e.g. "/metrics", "/logs/*", "*".
	NonResourceURL string
	// Namespace is "" for every namespace and cluster-scoped resources,
	// as a ClusterRoleBinding grants.
	Namespace string
}

// String says the change in a sentence: `group "team-a" gains read of
// secrets in namespace shop`, `user "bob" loses every verb of every
// resource in every namespace`. "read" stands for exactly get, list and
// watch.
func (c Change) String() string {
	gains := "loses"
	if c.Gains {
		gains = "gains"
	}
	s := c.Subject + " " + gains + " " + verbsLabel(c.Verbs) + " of "
	if c.Resource == "" {
		if c.NonResourceURL == "*" {
			return s + "every non-resource URL"
		}
		return s + c.NonResourceURL
	}
	s += resourceLabel(c.APIGroup, c.Resource)
	if c.ResourceName != "" {
		s += fmt.Sprintf(" %q", c.ResourceName)
	}
	if c.Namespace == "" {
		return s + " in every namespace"
	}
	return s + " in namespace " + c.Namespace
}

// Sensitive reports whether the change is one a reviewer must not miss:
// about Secrets, every resource, every non-resource URL, or every verb.
func (c Change) Sensitive() bool {
	base, _, _ := strings.Cut(c.Resource, "/")
	return base == "secrets" || c.Resource == "*" || c.NonResourceURL == "*" || slices.Contains(c.Verbs, "*")
}

func verbsLabel(verbs []string) string {
	switch {
	case slices.Equal(verbs, []string{"get", "list", "watch"}):
		return "read"
	case slices.Equal(verbs, []string{"*"}):
		return "every verb"
	}
	return strings.Join(verbs, ", ")
}

// resourceLabel names a rule's or a request's resource the way kubectl
// does, with the group after a dot: "pods", "pods/log",
// "deployments.apps", "deployments.apps/scale", and says what the
// wildcards stand for.
func resourceLabel(group, resource string) string {
	base, sub, hasSub := strings.Cut(resource, "/")
	if base == "*" {
		every := "every resource"
		switch group {
		case "*":
		case "":
			every += " of the core API group"
		default:
			every += " of API group " + group
		}
		if hasSub {
			return "the " + sub + " subresource of " + every
		}
		return every
	}
	switch group {
	case "":
		return resource
	case "*":
		return resource + " of every API group"
	}
	if hasSub {
		return base + "." + group + "/" + sub
	}
	return base + "." + group
}

// userLabel: `user "alice"`, or `ServiceAccount shop/web` for a
// ServiceAccount's user name.
func userLabel(user string) string {
	if ns, name, ok := splitServiceAccount(user); ok {
		return "ServiceAccount " + ns + "/" + name
	}
	return fmt.Sprintf("user %q", user)
}

func (k subjectKey) label() string {
	if k.group {
		return fmt.Sprintf("group %q", k.name)
	}
	return userLabel(k.name)
}

// compareChanges orders sensitive changes first, then gains before
// losses, then by subject and by what they are about.
func compareChanges(a, b Change) int {
	if a.Sensitive() != b.Sensitive() {
		if a.Sensitive() {
			return -1
		}
		return 1
	}
	if a.Gains != b.Gains {
		if a.Gains {
			return -1
		}
		return 1
	}
	return cmp.Or(
		cmp.Compare(a.Subject, b.Subject),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.APIGroup, b.APIGroup),
		cmp.Compare(a.Resource, b.Resource),
		cmp.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.NonResourceURL, b.NonResourceURL),
		slices.Compare(a.Verbs, b.Verbs),
	)
}

// Summary is one line of a review: a sensitive change on its own, or the
// other changes of one subject, direction, verbs and scope together.
type Summary struct {
	Subject   string
	Gains     bool
	Sensitive bool
	Message   string
}

// summaryListed is how many resources a summary names before "and N more".
const summaryListed = 5

// Summarize groups changes for people: removing a binding of view is one
// line naming what it gave, not forty. Sensitive changes (secrets,
// wildcards) keep a line each. The order of changes is kept, by each
// group's first change.
func Summarize(changes []Change) []Summary {
	type group struct {
		first Change
		names []string
	}
	var order []string
	groups := map[string]*group{}
	var out []Summary
	for _, c := range changes {
		if c.Sensitive() || c.Resource == "" {
			out = append(out, Summary{Subject: c.Subject, Gains: c.Gains, Sensitive: c.Sensitive(), Message: c.String()})
			continue
		}
		k := fmt.Sprint(c.Subject, "\x00", c.Gains, "\x00", c.Verbs, "\x00", c.Namespace)
		g := groups[k]
		if g == nil {
			g = &group{first: c}
			groups[k] = g
			order = append(order, k)
		}
		name := resourceLabel(c.APIGroup, c.Resource)
		if c.ResourceName != "" {
			name += fmt.Sprintf(" %q", c.ResourceName)
		}
		g.names = append(g.names, name)
	}
	for _, k := range order {
		g := groups[k]
		if len(g.names) == 1 {
			out = append(out, Summary{Subject: g.first.Subject, Gains: g.first.Gains, Message: g.first.String()})
			continue
		}
		c := g.first
		gains := "loses"
		if c.Gains {
			gains = "gains"
		}
		where := " in every namespace"
		if c.Namespace != "" {
			where = " in namespace " + c.Namespace
		}
		listed := strings.Join(g.names[:min(len(g.names), summaryListed)], ", ")
		if n := len(g.names) - summaryListed; n > 0 {
			listed += fmt.Sprintf(" and %d more", n)
		}
		out = append(out, Summary{Subject: c.Subject, Gains: c.Gains,
			Message: fmt.Sprintf("%s %s %s of %d resources%s: %s", c.Subject, gains, verbsLabel(c.Verbs), len(g.names), where, listed)})
	}
	return out
}
