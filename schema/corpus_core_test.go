package schema

import (
	"os"
	"regexp"
	"testing"

	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// unsupportedRE reads the kind and apiVersion out of an unsupported-kind
// error.
var unsupportedRE = regexp.MustCompile(`^unsupported kind (\S+) \(apiVersion (\S+)\)`)

// TestCorpusBuiltinKindsAccepted: no document of the shared corpus is
// refused as an unsupported kind when its kind is one of Kubernetes' own,
// in a version Kubernetes still serves (client-go's scheme knows it): what
// stays unsupported is custom resources and removed APIs. The corpus holds
// RBAC objects of each kind, which are accepted.
func TestCorpusBuiltinKindsAccepted(t *testing.T) {
	dir := corpusDir()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("corpus not found at %s (set KEELSON_CORPUS): %v", dir, err)
	}
	objs, err := testSchema(t).Load(t.Context(), os.DirFS(dir), nil)
	list, _ := err.(ErrorList)
	if err != nil && list == nil {
		t.Fatal(err)
	}
	for _, e := range list {
		m := unsupportedRE.FindStringSubmatch(e.Msg)
		if m == nil {
			continue
		}
		gv, err := k8sschema.ParseGroupVersion(m[2])
		if err != nil {
			continue
		}
		if gvk := gv.WithKind(m[1]); scheme.Scheme.Recognizes(gvk) {
			t.Errorf("%s:%d: %s is a kind of Kubernetes' own API, refused as unsupported", e.File, e.Line, gvk)
		}
	}
	accepted := map[string]int{}
	for _, o := range objs {
		accepted[o.Kind]++
	}
	for _, k := range []string{"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} {
		if accepted[k] == 0 {
			t.Errorf("no %s of the corpus accepted", k)
		}
	}
}
