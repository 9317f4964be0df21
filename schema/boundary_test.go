package schema

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNothingOfKeelson keeps schema usable from everywhere (gitsync,
// plan, editors): it must not import other keelson packages, except the
// types of keelson's own kinds (api/v1alpha1), which it decodes manifests
// into and which import nothing of keelson themselves.
func TestImportsNothingOfKeelson(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/keelson/keelson/") && pkg != "github.com/keelson/keelson/schema" &&
			pkg != "github.com/keelson/keelson/api/v1alpha1" {
			t.Errorf("schema imports %s", pkg)
		}
	}
}
