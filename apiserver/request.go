package apiserver

import (
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/store"
)

// request is one API request resolved to what it asks of which object(s).
type request struct {
	// verb is get, list, watch, create, update, patch, delete or
	// deletecollection, as Kubernetes names them.
	verb        string
	res         store.Resource
	namespace   string
	name        string
	subresource string
}

// groupResource is the resource in the form Kubernetes errors name it.
func (q *request) groupResource() schema.GroupResource {
	return schema.GroupResource{Group: q.res.GVK.Group, Resource: q.res.Plural}
}

// namespaceSubresources are the subresources of a namespace, which must not be
// read as a resource inside that namespace.
var namespaceSubresources = map[string]bool{"status": true, "finalize": true}

// parseRequest resolves the path of a resource request: /api/v1/… or
// /apis/<group>/<version>/…, optionally with namespaces/<ns>/ and the legacy
// watch/ prefix.
func parseRequest(r *http.Request) (*request, error) {
	path := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(path, "/")
	var group, version string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		version, parts = parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, version, parts = parts[1], parts[2], parts[3:]
	default:
		return nil, apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path)
	}
	q := &request{}
	legacyWatch := false
	if parts[0] == "watch" {
		legacyWatch, parts = true, parts[1:]
	}
	if len(parts) >= 2 && parts[0] == "namespaces" {
		q.namespace = parts[1]
		if len(parts) > 2 && !namespaceSubresources[parts[2]] {
			parts = parts[2:]
		}
	}
	if len(parts) == 0 || len(parts) > 3 || parts[0] == "" {
		return nil, apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path)
	}
	res, ok := lookupResource(group, version, parts[0])
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: group, Resource: parts[0]}, "")
	}
	q.res = res
	if res.Plural == "namespaces" && q.namespace != "" {
		// /api/v1/namespaces/<name>[/status] names a namespace object.
		q.name, q.namespace = q.namespace, ""
		if len(parts) >= 3 {
			q.subresource = parts[2]
		}
	} else {
		if len(parts) >= 2 {
			q.name = parts[1]
		}
		if len(parts) == 3 {
			q.subresource = parts[2]
		}
	}
	if !res.Namespaced && q.namespace != "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s is cluster-scoped: drop namespaces/%s from the path", res.Plural, q.namespace))
	}
	podLog := q.subresource == "log" && res.Plural == "pods" && res.GVK.Group == ""
	token := q.subresource == "token" && res.Plural == "serviceaccounts" && res.GVK.Group == ""
	if q.subresource != "" && q.subresource != "status" && !podLog && !token {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: group, Resource: res.Plural + "/" + q.subresource}, q.name)
	}
	q.verb = verbOf(r, q.name, legacyWatch)
	return q, nil
}

func verbOf(r *http.Request, name string, legacyWatch bool) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if legacyWatch || isTrue(r.URL.Query().Get("watch")) {
			return "watch"
		}
		if name == "" {
			return "list"
		}
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		if name == "" {
			return "deletecollection"
		}
		return "delete"
	}
	return strings.ToLower(r.Method)
}

func isTrue(s string) bool { return s == "true" || s == "1" }

// lookupResource finds the served resource by group, version and plural.
func lookupResource(group, version, plural string) (store.Resource, bool) {
	name := plural
	if group != "" {
		name = plural + "." + group
	}
	res, err := store.ResourceByName(name)
	if err != nil || res.GVK.Version != version || res.GVK.Group != group {
		return store.Resource{}, false
	}
	return res, true
}
