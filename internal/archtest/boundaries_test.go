package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/keelson/keelson/"

// forbidden maps a package pattern to import-path prefixes none of its
// packages may depend on, directly or not, except those under allowed.
var forbidden = []struct {
	pkg     string
	banned  []string
	why     string
	allowed []string
}{
	{"./schema/...", []string{module}, "schema imports nothing else of keelson but the types of keelson's own kinds, which it decodes manifests into",
		[]string{module + "api/"}},
	{"./api/...", []string{module}, "keelson's API types are leaves, as k8s.io/api is, so that every package may use them", nil},
	{"./agent/...", []string{module + "store", module + "reconciler", module + "gitsync", "go.etcd.io/etcd/"},
		"the agent speaks to the control plane only through the API", nil},
	{"./gitsync/...", []string{module + "reconciler", module + "agent"}, "gitsync does not reach into controllers", nil},
	{"./reconciler/...", []string{module + "agent", "github.com/containerd/"}, "controllers never call containerd", nil},
	{"./apiserver/...", []string{module + "reconciler", module + "gitsync", module + "agent"},
		"the API holds no controller or sync logic", nil},
	{"./clusterdns/...", []string{module + "store", module + "reconciler", module + "gitsync", module + "agent", "go.etcd.io/etcd/"},
		"cluster DNS answers from informers it is given, never from the store per query", nil},
	{"./internal/servicenet/...", []string{module}, "the service network's agreements are a leaf every part may import", nil},
	{"./internal/health/...", []string{module + "reconciler", module + "gitsync", module + "agent", module + "apiserver"},
		"health rules are pure functions of an object, shared by the controllers and the sync", nil},
	{"./store/...", []string{module}, "the store is the base every part of the control plane stands on: it knows keelson's API types and nothing above them",
		[]string{module + "api/"}},
	{"./admission/...", []string{module + "reconciler", module + "gitsync", module + "agent", module + "apiserver"},
		"quotas and limit ranges are policy over the store: they read and write through it, and the sync and the controllers ask them", nil},
	{"./cmd/...", []string{"k8s.io/kubernetes/"}, "the commands are built from keelson's packages and the published Kubernetes libraries, never the monorepo", nil},
	{"./cmd/keelson-logger", []string{module, "k8s.io/", "sigs.k8s.io/", "github.com/", "go.", "golang.org/x/", "google.golang.org/"},
		"one keelson-logger runs per container for its whole life: it holds the standard library and agent/logs only, so it starts at once and stays small",
		[]string{module + "agent/logs"}},
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
				if strings.HasPrefix(dep, b) && !hasAnyPrefix(dep, rule.allowed) {
					t.Errorf("%s depends on %s: %s", rule.pkg, dep, rule.why)
				}
			}
		}
	}
}

// etcdImporters are the only packages that import etcd's client themselves
// (test files aside): store keeps every key, lease and election, so that what
// keelson writes to etcd, and how it is fenced, is decided in one place.
var etcdImporters = []string{module + "store", module + "store/etcdtest"}

func TestOnlyStoreImportsEtcd(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		checked++
		if slices.Contains(etcdImporters, pkg) {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, "go.etcd.io/etcd/") {
				t.Errorf("%s imports %s: only package store talks to etcd; add what it needs to store", pkg, imp)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("go list listed %d packages: the check saw too little to mean anything", checked)
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
