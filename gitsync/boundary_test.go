package gitsync

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReachesNoController keeps gitsync on its side of the store: it writes
// desired state and must not import the controllers or the node agent.
func TestReachesNoController(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"reconciler", "agent", "apiserver"} {
			p := "github.com/keelson/keelson/" + banned
			if pkg == p || strings.HasPrefix(pkg, p+"/") {
				t.Errorf("gitsync imports %s", pkg)
			}
		}
	}
}
