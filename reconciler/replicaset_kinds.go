package reconciler

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/store"
)

// podOwnerKind lets one controller keep pods for both ReplicaSets and
// ReplicationControllers: an RC is seen as a ReplicaSet with an equality
// selector, as Kubernetes' own RC controller does.
type podOwnerKind struct {
	name string
	res  store.Resource
	gvk  schema.GroupVersionKind
	// view returns the cached object as a ReplicaSet (shared: do not modify)
	// and its selector.
	view func(obj any) (*appsv1.ReplicaSet, labels.Selector, error)
	// writeStatus stores status as the object's .status.
	writeStatus func(ctx context.Context, st *store.Store, obj any, status appsv1.ReplicaSetStatus) error
	// status returns the object's current status as a ReplicaSet's.
	status func(obj any) appsv1.ReplicaSetStatus
}

var replicaSetKind = podOwnerKind{
	name: "replicaset",
	res:  store.MustResource("replicasets.apps"),
	gvk:  appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
	view: func(obj any) (*appsv1.ReplicaSet, labels.Selector, error) {
		rs := obj.(*appsv1.ReplicaSet)
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil {
			return rs, nil, fmt.Errorf("replicaset %s/%s: spec.selector: %w", rs.Namespace, rs.Name, err)
		}
		return rs, sel, nil
	},
	writeStatus: func(ctx context.Context, st *store.Store, obj any, status appsv1.ReplicaSetStatus) error {
		rs := obj.(*appsv1.ReplicaSet)
		out := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: rs.Namespace, Name: rs.Name}, Status: status}
		return st.UpdateStatus(ctx, out)
	},
	status: func(obj any) appsv1.ReplicaSetStatus { return obj.(*appsv1.ReplicaSet).Status },
}

var replicationControllerKind = podOwnerKind{
	name: "replicationcontroller",
	res:  store.MustResource("replicationcontrollers"),
	gvk:  corev1.SchemeGroupVersion.WithKind("ReplicationController"),
	view: func(obj any) (*appsv1.ReplicaSet, labels.Selector, error) {
		rc := obj.(*corev1.ReplicationController)
		rs := &appsv1.ReplicaSet{ObjectMeta: rc.ObjectMeta, Status: rcStatusToRS(rc.Status)}
		rs.Spec.Replicas = rc.Spec.Replicas
		rs.Spec.MinReadySeconds = rc.Spec.MinReadySeconds
		if rc.Spec.Template != nil {
			rs.Spec.Template = *rc.Spec.Template
		}
		sel := rc.Spec.Selector
		if len(sel) == 0 {
			sel = rs.Spec.Template.Labels
		}
		if len(sel) == 0 {
			return rs, nil, fmt.Errorf("replicationcontroller %s/%s: spec.selector is empty and the template has no labels", rc.Namespace, rc.Name)
		}
		rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: sel}
		return rs, labels.SelectorFromSet(sel), nil
	},
	writeStatus: func(ctx context.Context, st *store.Store, obj any, status appsv1.ReplicaSetStatus) error {
		rc := obj.(*corev1.ReplicationController)
		out := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: rc.Namespace, Name: rc.Name}}
		out.Status = corev1.ReplicationControllerStatus{
			Replicas: status.Replicas, FullyLabeledReplicas: status.FullyLabeledReplicas,
			ReadyReplicas: status.ReadyReplicas, AvailableReplicas: status.AvailableReplicas,
			ObservedGeneration: status.ObservedGeneration,
		}
		for _, c := range status.Conditions {
			out.Status.Conditions = append(out.Status.Conditions, corev1.ReplicationControllerCondition{
				Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status,
				LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
			})
		}
		return st.UpdateStatus(ctx, out)
	},
	status: func(obj any) appsv1.ReplicaSetStatus { return rcStatusToRS(obj.(*corev1.ReplicationController).Status) },
}

func rcStatusToRS(s corev1.ReplicationControllerStatus) appsv1.ReplicaSetStatus {
	out := appsv1.ReplicaSetStatus{
		Replicas: s.Replicas, FullyLabeledReplicas: s.FullyLabeledReplicas, ReadyReplicas: s.ReadyReplicas,
		AvailableReplicas: s.AvailableReplicas, ObservedGeneration: s.ObservedGeneration,
	}
	for _, c := range s.Conditions {
		out.Conditions = append(out.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return out
}
