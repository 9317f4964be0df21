package gitsync

import (
	"slices"
	"strings"
	"testing"
)

// A pull request that changes RBAC says who gains or loses what, in words:
// a grant of secrets first, as a warning of its own code.
func TestPlanAccessChanges(t *testing.T) {
	const secretRole = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: shop}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get, list, watch]}
`
	const roles = secretRole + `---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: devs-view, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: Group, apiGroup: rbac.authorization.k8s.io, name: devs}
`
	const secrets = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team-a-secrets, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects:
- {kind: Group, apiGroup: rbac.authorization.k8s.io, name: team-a}
- {kind: ServiceAccount, name: web}
`
	base := map[string]string{"deploy/ns.yaml": namespace("shop"), "deploy/roles.yaml": roles, "deploy/cm.yaml": configMap("cfg", "1")}
	head := map[string]string{"deploy/roles.yaml": roles + "---\n" + secrets}
	p := planRepo(t, base, head)
	var got []string
	for _, r := range p.Risks {
		got = append(got, string(r.Level)+" "+r.Code+" "+r.Object+": "+r.Message)
	}
	for _, want := range []string{
		`warning access-gained-sensitive RBAC: group "team-a" gains read of secrets in namespace shop`,
		`warning access-gained-sensitive RBAC: ServiceAccount shop/web gains read of secrets in namespace shop`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no risk %q in\n%q", want, got)
		}
	}

	// The binding of view goes: the group loses what view gave it, and
	// nothing is said of secrets, which view never gave.
	p = planRepo(t, base, map[string]string{"deploy/roles.yaml": secretRole})
	lost := 0
	for _, r := range p.Risks {
		if r.Code == "access-lost" && strings.HasPrefix(r.Message, `group "devs" `) {
			lost++
			if !strings.HasPrefix(r.Message, `group "devs" loses read of `) || !strings.Contains(r.Message, " resources in namespace shop: bindings, configmaps, ") {
				t.Errorf("the loss of view, summed up: %q", r.Message)
			}
		}
		if r.Code == "access-gained-sensitive" || r.Code == "access-gained" {
			t.Errorf("a removed binding gains: %+v", r)
		}
	}
	if lost != 1 {
		t.Errorf("removing the view binding, want one line for group devs: %+v", p.Risks)
	}

	// A change of anything else computes no access change.
	p = planRepo(t, base, map[string]string{"deploy/cm.yaml": configMap("cfg", "2")})
	for _, r := range p.Risks {
		if r.Code == "access-gained" || r.Code == "access-lost" || r.Code == "access-gained-sensitive" {
			t.Errorf("a ConfigMap change reports %+v", r)
		}
	}
}
