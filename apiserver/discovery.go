package apiserver

import (
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
)

// readVerbs are all that people may do to any resource.
var readVerbs = []string{"get", "list", "watch"}

// aggregatedType is the media type of aggregated discovery, which current
// kubectl asks for first; clients that do not ask get the classic documents.
const aggregatedType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

type groupVersion struct {
	group, version string
	resources      []store.Resource
}

// servedGroups is every group version keelson serves, core first, in the
// order of store.Resources.
func servedGroups() []*groupVersion {
	var out []*groupVersion
	idx := map[string]*groupVersion{}
	for _, r := range servedResources() {
		k := r.GVK.GroupVersion().String()
		g, ok := idx[k]
		if !ok {
			g = &groupVersion{group: r.GVK.Group, version: r.GVK.Version}
			idx[k] = g
			out = append(out, g)
		}
		g.resources = append(g.resources, r)
	}
	return append(out, &groupVersion{group: metricsGV.Group, version: metricsGV.Version, resources: []store.Resource{metricsNodes, metricsPods}},
		&groupVersion{group: authorizationGV.Group, version: authorizationGV.Version, resources: []store.Resource{selfSubjectAccessReviews, selfSubjectRulesReviews}},
		&groupVersion{group: authenticationGV.Group, version: authenticationGV.Version, resources: []store.Resource{tokenReviews, selfSubjectReviews}})
}

// verbsOf are the verbs discovery lists for a group.
func verbsOf(group string) []string {
	switch group {
	case metricsGV.Group:
		return metricsVerbs
	case authorizationGV.Group, authenticationGV.Group:
		return reviewVerbs
	}
	return readVerbs
}

func (s *Server) registerDiscovery() {
	s.mux.HandleFunc("GET /api", s.discoverCore)
	s.mux.HandleFunc("GET /api/{$}", s.discoverCore)
	s.mux.HandleFunc("GET /apis", s.discoverGroups)
	s.mux.HandleFunc("GET /apis/{$}", s.discoverGroups)
	s.mux.HandleFunc("GET /api/v1", s.discoverResources)
	s.mux.HandleFunc("GET /api/v1/{$}", s.discoverResources)
	s.mux.HandleFunc("GET /apis/{group}/{version}", s.discoverResources)
	s.mux.HandleFunc("GET /apis/{group}/{version}/{$}", s.discoverResources)
	s.mux.HandleFunc("GET /apis/{group}", s.discoverGroup)
	s.mux.HandleFunc("GET /apis/{group}/{$}", s.discoverGroup)
}

func wantsAggregated(r *http.Request) bool {
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		if strings.Contains(a, "as=APIGroupDiscoveryList") && strings.Contains(a, "v=v2") && !strings.Contains(a, "v=v2beta1") {
			return true
		}
	}
	return false
}

func (s *Server) discoverCore(w http.ResponseWriter, r *http.Request) {
	if wantsAggregated(r) {
		writeAggregated(w, servedGroups()[:1])
		return
	}
	writeJSON(w, http.StatusOK, &metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
		Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
			{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host},
		},
	})
}

func (s *Server) discoverGroups(w http.ResponseWriter, r *http.Request) {
	groups := servedGroups()[1:]
	if wantsAggregated(r) {
		writeAggregated(w, groups)
		return
	}
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, g := range groups {
		list.Groups = append(list.Groups, apiGroup(g))
	}
	writeJSON(w, http.StatusOK, list)
}

func apiGroup(g *groupVersion) metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: g.group + "/" + g.version, Version: g.version}
	return metav1.APIGroup{Name: g.group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}
}

func (s *Server) discoverGroup(w http.ResponseWriter, r *http.Request) {
	for _, g := range servedGroups()[1:] {
		if g.group == r.PathValue("group") {
			ag := apiGroup(g)
			ag.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
			writeJSON(w, http.StatusOK, &ag)
			return
		}
	}
	http.NotFound(w, r)
}

func (s *Server) discoverResources(w http.ResponseWriter, r *http.Request) {
	group, version := r.PathValue("group"), r.PathValue("version")
	if !strings.HasPrefix(r.URL.Path, "/apis/") {
		version = "v1"
	}
	for _, g := range servedGroups() {
		if g.group != group || g.version != version {
			continue
		}
		list := &metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: strings.TrimPrefix(g.group+"/"+g.version, "/"),
		}
		for _, res := range g.resources {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: res.Plural, SingularName: strings.ToLower(res.GVK.Kind), Namespaced: res.Namespaced,
				Kind: res.GVK.Kind, Verbs: verbsOf(g.group), ShortNames: res.ShortNames,
			})
		}
		writeJSON(w, http.StatusOK, list)
		return
	}
	http.NotFound(w, r)
}

func writeAggregated(w http.ResponseWriter, groups []*groupVersion) {
	list := &apidiscoveryv2.APIGroupDiscoveryList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"},
	}
	for _, g := range groups {
		v := apidiscoveryv2.APIVersionDiscovery{Version: g.version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		for _, res := range g.resources {
			scope := apidiscoveryv2.ScopeCluster
			if res.Namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			gvk := metav1.GroupVersionKind{Group: res.GVK.Group, Version: res.GVK.Version, Kind: res.GVK.Kind}
			v.Resources = append(v.Resources, apidiscoveryv2.APIResourceDiscovery{
				Resource: res.Plural, ResponseKind: &gvk, Scope: scope,
				SingularResource: strings.ToLower(res.GVK.Kind), Verbs: verbsOf(g.group), ShortNames: res.ShortNames,
			})
		}
		list.Items = append(list.Items, apidiscoveryv2.APIGroupDiscovery{
			ObjectMeta: metav1.ObjectMeta{Name: g.group},
			Versions:   []apidiscoveryv2.APIVersionDiscovery{v},
		})
	}
	w.Header().Set("Content-Type", aggregatedType)
	w.Header().Set("Vary", "Accept")
	b, err := jsonMarshal(list)
	if err != nil {
		writeStatus(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
