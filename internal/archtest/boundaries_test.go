package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/keelson/keelson/"

// forbidden maps a package pattern to import-path prefixes none of its
// packages may depend on, directly or not.
var forbidden = []struct {
	pkg    string
	banned []string
	why    string
}{
	{"./schema/...", []string{module}, "schema imports nothing else of keelson"},
	{"./agent/...", []string{module + "store", module + "reconciler", module + "gitsync", "go.etcd.io/etcd/"},
		"the agent speaks to the control plane only through the API"},
	{"./gitsync/...", []string{module + "reconciler", module + "agent"}, "gitsync does not reach into controllers"},
	{"./reconciler/...", []string{module + "agent", "github.com/containerd/"}, "controllers never call containerd"},
	{"./apiserver/...", []string{module + "reconciler", module + "gitsync", module + "agent"},
		"the API holds no controller or sync logic"},
}

func TestBoundaries(t *testing.T) {
	for _, rule := range forbidden {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", rule.pkg)
		cmd.Dir = "../.." // the module root
		out, err := cmd.CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "matched no packages") {
				continue
			}
			t.Fatalf("go list %s: %v\n%s", rule.pkg, err, out)
		}
		self := module + strings.TrimSuffix(strings.TrimPrefix(rule.pkg, "./"), "/...")
		for _, dep := range strings.Fields(string(out)) {
			if dep == self || strings.HasPrefix(dep, self+"/") {
				continue
			}
			for _, b := range rule.banned {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s depends on %s: %s", rule.pkg, dep, rule.why)
				}
			}
		}
	}
}
