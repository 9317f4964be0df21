package support_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/internal/support"
)

func TestCustomResourcesAreNotActedOn(t *testing.T) {
	tests := []struct {
		name string
		gk   schema.GroupKind
		want string // "" when acted on or not a custom resource
	}{
		{"custom resource", schema.GroupKind{Group: "example.com", Kind: "Widget"}, "custom resources of the CustomResourceDefinition of example.com/Widget"},
		{"the CRD itself", schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}, ""},
		{"built-in acted on", schema.GroupKind{Group: "apps", Kind: "Deployment"}, ""},
		{"keelson's own", schema.GroupKind{Group: "keelson.dev", Kind: "NodePolicy"}, ""},
		{"core", schema.GroupKind{Kind: "Pod"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			missing, ok := support.NotActedOn(tc.gk)
			if ok != (tc.want != "") || !strings.Contains(missing, tc.want) {
				t.Errorf("NotActedOn(%s) = %q, %v; want %q", tc.gk, missing, ok, tc.want)
			}
		})
	}
}
