package apiserver

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/keelson/keelson/store"
)

// column is one Table column: its definition and how to fill it.
type column struct {
	name     string
	typ      string // string; integer when the cells are int64
	priority int32  // 0 is shown by default, 1 only with -o wide
	cell     func(o store.Object) any
}

func col(name string, cell func(o store.Object) any) column {
	return column{name: name, typ: "string", cell: cell}
}

func wide(c column) column { c.priority = 1; return c }

var (
	nameCol = column{name: "Name", typ: "string", cell: func(o store.Object) any { return o.GetName() }}
	ageCol  = col("Age", func(o store.Object) any { return age(o.GetCreationTimestamp()) })
)

func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// columnsFor are the columns `kubectl get` shows for a kind.
func columnsFor(res store.Resource) []column {
	if cols, ok := customColumns(res); ok {
		return cols
	}
	if cols, ok := tableColumns[res.GVK.Kind]; ok {
		return cols
	}
	return []column{nameCol, ageCol}
}

var tableColumns = map[string][]column{
	"Pod":        podColumns,
	"Deployment": deploymentColumns,
	"ReplicaSet": {nameCol,
		col("Desired", func(o store.Object) any { return int64(ptrOr(o.(*appsv1.ReplicaSet).Spec.Replicas, 1)) }),
		col("Current", func(o store.Object) any { return int64(o.(*appsv1.ReplicaSet).Status.Replicas) }),
		col("Ready", func(o store.Object) any { return int64(o.(*appsv1.ReplicaSet).Status.ReadyReplicas) }),
		ageCol},
	"StatefulSet": {nameCol,
		col("Ready", func(o store.Object) any {
			s := o.(*appsv1.StatefulSet)
			return fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, ptrOr(s.Spec.Replicas, 1))
		}), ageCol},
	"DaemonSet": {nameCol,
		col("Desired", func(o store.Object) any { return int64(o.(*appsv1.DaemonSet).Status.DesiredNumberScheduled) }),
		col("Current", func(o store.Object) any { return int64(o.(*appsv1.DaemonSet).Status.CurrentNumberScheduled) }),
		col("Ready", func(o store.Object) any { return int64(o.(*appsv1.DaemonSet).Status.NumberReady) }),
		col("Up-to-date", func(o store.Object) any { return int64(o.(*appsv1.DaemonSet).Status.UpdatedNumberScheduled) }),
		col("Available", func(o store.Object) any { return int64(o.(*appsv1.DaemonSet).Status.NumberAvailable) }),
		col("Node Selector", func(o store.Object) any {
			return labels.FormatLabels(o.(*appsv1.DaemonSet).Spec.Template.Spec.NodeSelector)
		}),
		ageCol},
	"Service":   serviceColumns,
	"Node":      nodeColumns,
	"Namespace": {nameCol, col("Status", func(o store.Object) any { return string(o.(*corev1.Namespace).Status.Phase) }), ageCol},
	"Event":     eventColumns,
	"ConfigMap": {nameCol, col("Data", func(o store.Object) any {
		c := o.(*corev1.ConfigMap)
		return int64(len(c.Data) + len(c.BinaryData))
	}), ageCol},
	"Secret": {nameCol,
		col("Type", func(o store.Object) any { return string(o.(*corev1.Secret).Type) }),
		col("Data", func(o store.Object) any { return int64(len(o.(*corev1.Secret).Data)) }), ageCol},
	"Job": {nameCol,
		col("Status", func(o store.Object) any { return jobStatus(o.(*batchv1.Job)) }),
		col("Completions", func(o store.Object) any { return jobCompletions(o.(*batchv1.Job)) }),
		col("Duration", func(o store.Object) any { return jobDuration(o.(*batchv1.Job)) }), ageCol},
	"CronJob": {nameCol,
		col("Schedule", func(o store.Object) any { return o.(*batchv1.CronJob).Spec.Schedule }),
		col("Timezone", func(o store.Object) any { return orNone(ptrOr(o.(*batchv1.CronJob).Spec.TimeZone, "")) }),
		col("Suspend", func(o store.Object) any { return fmt.Sprint(ptrOr(o.(*batchv1.CronJob).Spec.Suspend, false)) }),
		col("Active", func(o store.Object) any { return int64(len(o.(*batchv1.CronJob).Status.Active)) }),
		col("Last Schedule", func(o store.Object) any {
			if t := o.(*batchv1.CronJob).Status.LastScheduleTime; t != nil {
				return age(*t)
			}
			return "<none>"
		}), ageCol},
	"Lease":         {nameCol, col("Holder", func(o store.Object) any { return ptrOr(o.(*coordinationv1.Lease).Spec.HolderIdentity, "") }), ageCol},
	"Endpoints":     endpointsColumns,
	"EndpointSlice": endpointSliceColumns,
	"HorizontalPodAutoscaler": {nameCol,
		col("Reference", func(o store.Object) any {
			r := o.(*autoscalingv2.HorizontalPodAutoscaler).Spec.ScaleTargetRef
			return r.Kind + "/" + r.Name
		}),
		col("Targets", func(o store.Object) any { return hpaTargets(o.(*autoscalingv2.HorizontalPodAutoscaler)) }),
		col("MinPods", func(o store.Object) any {
			return int64(ptrOr(o.(*autoscalingv2.HorizontalPodAutoscaler).Spec.MinReplicas, 1))
		}),
		col("MaxPods", func(o store.Object) any { return int64(o.(*autoscalingv2.HorizontalPodAutoscaler).Spec.MaxReplicas) }),
		col("Replicas", func(o store.Object) any {
			return int64(o.(*autoscalingv2.HorizontalPodAutoscaler).Status.CurrentReplicas)
		}),
		ageCol},
	"PodDisruptionBudget": {nameCol,
		col("Min Available", func(o store.Object) any { return intOrStringOrNA(o.(*policyv1.PodDisruptionBudget).Spec.MinAvailable) }),
		col("Max Unavailable", func(o store.Object) any {
			return intOrStringOrNA(o.(*policyv1.PodDisruptionBudget).Spec.MaxUnavailable)
		}),
		col("Allowed Disruptions", func(o store.Object) any { return int64(o.(*policyv1.PodDisruptionBudget).Status.DisruptionsAllowed) }),
		ageCol},
	"ServiceAccount": {nameCol, col("Secrets", func(o store.Object) any { return int64(len(o.(*corev1.ServiceAccount).Secrets)) }), ageCol},
	"ResourceQuota": {nameCol, ageCol,
		col("Request", func(o store.Object) any { return quotaColumn(o.(*corev1.ResourceQuota), false) }),
		col("Limit", func(o store.Object) any { return quotaColumn(o.(*corev1.ResourceQuota), true) })},
}

// intOrStringOrNA is kubectl's cell of an optional int-or-percent.
func intOrStringOrNA(v *intstr.IntOrString) string {
	if v == nil {
		return "N/A"
	}
	return v.String()
}

// quotaColumn is kubectl's REQUEST (limits false) or LIMIT column of a
// quota: "name: used/hard" of its resources, limits.* in LIMIT.
func quotaColumn(q *corev1.ResourceQuota, limits bool) string {
	names := make([]string, 0, len(q.Spec.Hard))
	for n := range q.Spec.Hard {
		if strings.HasPrefix(string(n), "limits.") == limits {
			names = append(names, string(n))
		}
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		hard := q.Spec.Hard[corev1.ResourceName(n)]
		used, ok := q.Status.Used[corev1.ResourceName(n)]
		u := "0"
		if ok {
			u = used.String()
		}
		parts[i] = fmt.Sprintf("%s: %s/%s", n, u, hard.String())
	}
	return strings.Join(parts, ", ")
}

// hpaTargets is kubectl's TARGETS of an autoscaler: "current/target" per
// Resource metric, <unknown> before the first measure.
func hpaTargets(h *autoscalingv2.HorizontalPodAutoscaler) string {
	var parts []string
	for _, m := range h.Spec.Metrics {
		if m.Resource == nil {
			continue
		}
		cur := "<unknown>"
		var st *autoscalingv2.MetricValueStatus
		for _, c := range h.Status.CurrentMetrics {
			if c.Resource != nil && c.Resource.Name == m.Resource.Name {
				st = &c.Resource.Current
			}
		}
		t := m.Resource.Target
		switch {
		case t.AverageUtilization != nil:
			if st != nil && st.AverageUtilization != nil {
				cur = fmt.Sprintf("%d%%", *st.AverageUtilization)
			}
			parts = append(parts, fmt.Sprintf("%s: %s/%d%%", m.Resource.Name, cur, *t.AverageUtilization))
		case t.AverageValue != nil:
			if st != nil && st.AverageValue != nil {
				cur = st.AverageValue.String()
			}
			parts = append(parts, fmt.Sprintf("%s: %s/%s", m.Resource.Name, cur, t.AverageValue.String()))
		}
	}
	if len(parts) == 0 {
		return "<none>"
	}
	return strings.Join(parts, ", ")
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// tableOf builds the Table of entries, each row carrying the object's
// metadata so kubectl can name its namespace.
func (v *view) tableOf(entries []*entry) (*metav1.Table, error) {
	cols := columnsFor(v.res)
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}}
	for _, c := range cols {
		t.ColumnDefinitions = append(t.ColumnDefinitions, metav1.TableColumnDefinition{Name: c.name, Type: c.typ, Priority: c.priority, Format: formatOf(c)})
	}
	if len(entries) > 0 {
		for i, c := range cols {
			if _, ok := c.cell(entries[0].obj).(int64); ok {
				t.ColumnDefinitions[i].Type = "integer"
			}
		}
	}
	t.Rows = make([]metav1.TableRow, 0, len(entries))
	for _, e := range entries {
		row := metav1.TableRow{Cells: make([]any, len(cols))}
		for i, c := range cols {
			row.Cells[i] = c.cell(e.obj)
		}
		meta := metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
			ObjectMeta: objectMeta(e.obj),
		}
		meta.ManagedFields = nil
		b, err := json.Marshal(&meta)
		if err != nil {
			return nil, err
		}
		row.Object = runtime.RawExtension{Raw: b}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

func formatOf(c column) string {
	if c.name == "Name" {
		return "name"
	}
	return ""
}
