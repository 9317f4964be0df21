package support

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// customResource is the sentence for a custom resource: a kind of a group
// that is neither Kubernetes' nor keelson's can only be defined by a
// CustomResourceDefinition, and keelson runs no controller of any CRD.
func customResource(gk schema.GroupKind) (string, bool) {
	g := gk.Group
	if !strings.Contains(g, ".") || g == "keelson.dev" || g == "k8s.io" || g == "kubernetes.io" ||
		strings.HasSuffix(g, ".k8s.io") || strings.HasSuffix(g, ".kubernetes.io") || gk.Kind == "" {
		return "", false
	}
	return fmt.Sprintf("keelson stores %s objects (custom resources of the CustomResourceDefinition of %s/%s) but runs no controller for them: they stay as written in Git",
		gk.Kind, g, gk.Kind), true
}
