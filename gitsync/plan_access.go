package gitsync

import (
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/keelson/keelson/internal/rbac"
)

// accessRisks compares who may do what under the RBAC objects of old and
// head, and says each gain and loss as a risk: access control is in Git,
// and a pull request that widens it must say so in words a reviewer reads
// ("group team-a gains read of secrets in namespace shop"), not only as a
// binding's diff. Nothing is computed when no RBAC object changes.
func accessRisks(old, head map[key]*desired, planned []*PlannedObject) []Risk {
	if !slices.ContainsFunc(planned, func(po *PlannedObject) bool { return strings.HasSuffix(po.key.res, "."+rbacv1.GroupName) }) {
		return nil
	}
	var risks []Risk
	for _, c := range rbac.Summarize(rbac.Diff(policyOf(old), policyOf(head))) {
		code := "access-gained"
		switch {
		case !c.Gains:
			code = "access-lost"
		case c.Sensitive:
			code = "access-gained-sensitive"
		}
		risks = append(risks, Risk{Level: RiskWarning, Code: code, Object: accessObject, Message: c.Message})
	}
	return risks
}

// accessObject is what access risks name as their object: the message
// names the subject, and the change may come from several objects.
const accessObject = "RBAC"

func policyOf(objs map[key]*desired) *rbac.Policy {
	var (
		roles  []*rbacv1.Role
		croles []*rbacv1.ClusterRole
		rbs    []*rbacv1.RoleBinding
		crbs   []*rbacv1.ClusterRoleBinding
	)
	for _, d := range objs {
		switch o := d.obj.(type) {
		case *rbacv1.Role:
			roles = append(roles, o)
		case *rbacv1.ClusterRole:
			croles = append(croles, o)
		case *rbacv1.RoleBinding:
			rbs = append(rbs, o)
		case *rbacv1.ClusterRoleBinding:
			crbs = append(crbs, o)
		}
	}
	return rbac.NewPolicy(roles, croles, rbs, crbs)
}
