package rbac

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Attributes of one request, as Kubernetes' authorizer sees it.
type Attributes struct {
	// User is the authenticated user name, e.g. "alice" or
	// "system:serviceaccount:shop:web".
	User string
	// Groups the user is in, e.g. "system:authenticated".
	Groups []string
	// Verb is get, list, watch, create, ... for resource requests and the
	// lower-case HTTP method for non-resource requests. "*" never appears
	// in a request.
	Verb string

	// ResourceRequest tells a request for an API object (the fields below)
	// from one for a non-resource URL (Path).
	ResourceRequest bool
	// Namespace is "" for cluster-scoped resources or a request across
	// all namespaces.
	Namespace string
	// APIGroup is "" for the core group.
	APIGroup string
	// Resource is plural, e.g. "pods".
	Resource string
	// Subresource is e.g. "log", "status", "token"; "" for none.
	Subresource string
	// Name of the object; "" for list, watch of a collection, and create.
	Name string

	// Path of a non-resource request, e.g. "/version", "/api", "/healthz".
	Path string
}

const saUserPrefix = "system:serviceaccount:"

// ServiceAccountUsername returns the user name a ServiceAccount
// authenticates as: system:serviceaccount:<namespace>:<name>.
func ServiceAccountUsername(namespace, name string) string {
	return saUserPrefix + namespace + ":" + name
}

// ServiceAccountGroups returns the groups every ServiceAccount of the
// namespace is in: system:serviceaccounts and
// system:serviceaccounts:<namespace>.
func ServiceAccountGroups(namespace string) []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace}
}

// splitServiceAccount returns the namespace and name of a ServiceAccount
// user name, and false for any other user name.
func splitServiceAccount(user string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, saUserPrefix)
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	if !ok || namespace == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return namespace, name, true
}

// ruleAllows reports whether r allows the request a. A resource rule never
// allows a non-resource request, nor the other way round.
func ruleAllows(r *rbacv1.PolicyRule, a *Attributes) bool {
	if !hasOrAll(r.Verbs, a.Verb, rbacv1.VerbAll) {
		return false
	}
	if !a.ResourceRequest {
		return urlMatches(r.NonResourceURLs, a.Path)
	}
	return hasOrAll(r.APIGroups, a.APIGroup, rbacv1.APIGroupAll) &&
		resourceMatches(r.Resources, a.Resource, a.Subresource) &&
		nameMatches(r.ResourceNames, a.Name)
}

func hasOrAll(set []string, want, all string) bool {
	for _, s := range set {
		if s == all || s == want {
			return true
		}
	}
	return false
}

// resourceMatches matches a request's resource and subresource against a
// rule's resources: "*", the combined "resource/subresource" (or just
// "resource" without a subresource), and "*/subresource". As upstream,
// "resource/*" is no wildcard: it matches only itself, which no request
// names.
func resourceMatches(rules []string, resource, sub string) bool {
	for _, r := range rules {
		if r == rbacv1.ResourceAll {
			return true
		}
		if sub == "" {
			if r == resource {
				return true
			}
			continue
		}
		// r == resource+"/"+sub or r == "*/"+sub, without building either.
		if len(r) == len(resource)+1+len(sub) && strings.HasPrefix(r, resource) &&
			r[len(resource)] == '/' && strings.HasSuffix(r, sub) {
			return true
		}
		if len(r) == len(sub)+2 && strings.HasPrefix(r, "*/") && strings.HasSuffix(r, sub) {
			return true
		}
	}
	return false
}

// nameMatches: a rule without resourceNames matches every name; one with
// them matches only those, and so, as upstream, no request without a
// name (list, watch of a collection, create, deletecollection). A
// resourceNames entry "" matches such requests, as it does upstream.
func nameMatches(names []string, name string) bool {
	if len(names) == 0 {
		return true
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// urlMatches matches a non-resource path against a rule's URLs: "*", the
// path itself, or a prefix ending in "*".
func urlMatches(urls []string, path string) bool {
	for _, u := range urls {
		if urlCovers(u, path) {
			return true
		}
	}
	return false
}

// urlCovers reports whether the rule URL u matches path, which may itself
// be a rule URL: "/apis/*" covers "/apis/apps" and "/apis/a*".
func urlCovers(u, path string) bool {
	if u == rbacv1.NonResourceAll || u == path {
		return true
	}
	return strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimRight(u, "*"))
}
