package apiserver

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// The columns of keelson's own kinds: a Sync reads like `flux get sources
// git` (ready, revision, message), with health beside it.
func init() {
	tableColumns["Sync"] = syncColumns
	tableColumns["NodePolicy"] = nodePolicyColumns
}

var syncColumns = []column{nameCol,
	col("Ready", func(o store.Object) any {
		return conditionStatus(o.(*keelsonv1alpha1.Sync).Status.Conditions, keelsonv1alpha1.ConditionReady)
	}),
	col("Health", func(o store.Object) any {
		if h := o.(*keelsonv1alpha1.Sync).Status.Health; h != nil {
			return h.Status
		}
		return "<none>"
	}),
	col("Revision", func(o store.Object) any { return shortRevision(o.(*keelsonv1alpha1.Sync).Status.LastAppliedRevision) }),
	col("Suspended", func(o store.Object) any { return strconv.FormatBool(o.(*keelsonv1alpha1.Sync).Spec.Suspend) }),
	ageCol,
	col("Message", func(o store.Object) any {
		c := meta.FindStatusCondition(o.(*keelsonv1alpha1.Sync).Status.Conditions, keelsonv1alpha1.ConditionReady)
		if c == nil {
			return ""
		}
		return c.Message
	}),
	wide(col("URL", func(o store.Object) any { return o.(*keelsonv1alpha1.Sync).Spec.URL })),
	wide(col("Ref", func(o store.Object) any { return orNone(o.(*keelsonv1alpha1.Sync).Spec.Ref) })),
	wide(col("Path", func(o store.Object) any { return orNone(o.(*keelsonv1alpha1.Sync).Spec.Path) })),
}

var nodePolicyColumns = []column{nameCol,
	col("Ready", func(o store.Object) any {
		return conditionStatus(o.(*keelsonv1alpha1.NodePolicy).Status.Conditions, keelsonv1alpha1.ConditionReady)
	}),
	col("Nodes", func(o store.Object) any { return int64(len(o.(*keelsonv1alpha1.NodePolicy).Status.Nodes)) }),
	col("Cordon", func(o store.Object) any {
		return strconv.FormatBool(o.(*keelsonv1alpha1.NodePolicy).Spec.Unschedulable)
	}),
	ageCol,
	wide(col("Matched", func(o store.Object) any {
		return orNone(strings.Join(o.(*keelsonv1alpha1.NodePolicy).Status.Nodes, ","))
	})),
}

// conditionStatus is a condition's status, Unknown when absent.
func conditionStatus(conds []metav1.Condition, t string) string {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return string(c.Status)
	}
	return string(metav1.ConditionUnknown)
}

// shortRevision is a revision for a column, "<none>" when empty.
func shortRevision(rev string) string { return orNone(keelsonv1alpha1.ShortRevision(rev)) }
