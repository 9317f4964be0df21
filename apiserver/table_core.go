package apiserver

import (
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
)

// The columns kubectl prints for kinds of Kubernetes' other API groups
// (RBAC, budgets, priority classes, network policies); kinds not named
// anywhere get NAME and AGE.
func init() {
	tableColumns["Role"] = roleColumns
	tableColumns["ClusterRole"] = roleColumns
	tableColumns["RoleBinding"] = bindingColumns(func(o store.Object) (rbacv1.RoleRef, []rbacv1.Subject) {
		b := o.(*rbacv1.RoleBinding)
		return b.RoleRef, b.Subjects
	})
	tableColumns["ClusterRoleBinding"] = bindingColumns(func(o store.Object) (rbacv1.RoleRef, []rbacv1.Subject) {
		b := o.(*rbacv1.ClusterRoleBinding)
		return b.RoleRef, b.Subjects
	})
	tableColumns["PodDisruptionBudget"] = pdbColumns
	tableColumns["PriorityClass"] = priorityClassColumns
	tableColumns["NetworkPolicy"] = networkPolicyColumns
	tableColumns["IngressClass"] = ingressClassColumns
}

// roleColumns: kubectl shows a role's creation time, not its age.
var roleColumns = []column{nameCol,
	{name: "Created At", typ: "date", cell: func(o store.Object) any {
		return o.GetCreationTimestamp().UTC().Format(time.RFC3339)
	}},
}

func bindingColumns(parts func(store.Object) (rbacv1.RoleRef, []rbacv1.Subject)) []column {
	subjects := func(kind string) func(o store.Object) any {
		return func(o store.Object) any {
			_, subs := parts(o)
			var names []string
			for _, s := range subs {
				if s.Kind != kind {
					continue
				}
				if kind == rbacv1.ServiceAccountKind {
					names = append(names, s.Namespace+"/"+s.Name)
				} else {
					names = append(names, s.Name)
				}
			}
			return strings.Join(names, ", ")
		}
	}
	return []column{nameCol,
		col("Role", func(o store.Object) any {
			ref, _ := parts(o)
			return ref.Kind + "/" + ref.Name
		}),
		ageCol,
		wide(col("Users", subjects(rbacv1.UserKind))),
		wide(col("Groups", subjects(rbacv1.GroupKind))),
		wide(col("ServiceAccounts", subjects(rbacv1.ServiceAccountKind))),
	}
}

var pdbColumns = []column{nameCol,
	col("Min Available", func(o store.Object) any {
		if v := o.(*policyv1.PodDisruptionBudget).Spec.MinAvailable; v != nil {
			return v.String()
		}
		return "N/A"
	}),
	col("Max Unavailable", func(o store.Object) any {
		if v := o.(*policyv1.PodDisruptionBudget).Spec.MaxUnavailable; v != nil {
			return v.String()
		}
		return "N/A"
	}),
	col("Allowed Disruptions", func(o store.Object) any {
		return int64(o.(*policyv1.PodDisruptionBudget).Status.DisruptionsAllowed)
	}),
	ageCol,
}

var priorityClassColumns = []column{nameCol,
	col("Value", func(o store.Object) any { return int64(o.(*schedulingv1.PriorityClass).Value) }),
	col("Global-Default", func(o store.Object) any { return strconv.FormatBool(o.(*schedulingv1.PriorityClass).GlobalDefault) }),
	ageCol,
	col("PreemptionPolicy", func(o store.Object) any {
		if p := o.(*schedulingv1.PriorityClass).PreemptionPolicy; p != nil {
			return string(*p)
		}
		return ""
	}),
}

var networkPolicyColumns = []column{nameCol,
	col("Pod-Selector", func(o store.Object) any {
		s := o.(*networkingv1.NetworkPolicy).Spec.PodSelector
		return orNone(metav1.FormatLabelSelector(&s))
	}),
	ageCol,
}

var ingressClassColumns = []column{nameCol,
	col("Controller", func(o store.Object) any { return o.(*networkingv1.IngressClass).Spec.Controller }),
	col("Parameters", func(o store.Object) any {
		p := o.(*networkingv1.IngressClass).Spec.Parameters
		if p == nil {
			return "<none>"
		}
		ref := p.Kind
		if p.APIGroup != nil {
			ref += "." + *p.APIGroup
		}
		return ref + "/" + p.Name
	}),
	ageCol,
}
