package apiserver

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/keelson/keelson/store"
)

// objectFields are the fields a field selector may name for obj: metadata.name
// and metadata.namespace for every kind, plus those Kubernetes offers per kind.
func objectFields(res store.Resource, obj store.Object) fields.Set {
	f := fields.Set{"metadata.name": obj.GetName()}
	if res.Namespaced {
		f["metadata.namespace"] = obj.GetNamespace()
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		f["spec.nodeName"] = o.Spec.NodeName
		f["spec.restartPolicy"] = string(o.Spec.RestartPolicy)
		f["spec.schedulerName"] = o.Spec.SchedulerName
		f["spec.serviceAccountName"] = o.Spec.ServiceAccountName
		f["spec.hostNetwork"] = strconv.FormatBool(o.Spec.HostNetwork)
		f["status.phase"] = string(o.Status.Phase)
		f["status.podIP"] = o.Status.PodIP
		f["status.nominatedNodeName"] = o.Status.NominatedNodeName
	case *corev1.Event:
		f["involvedObject.kind"] = o.InvolvedObject.Kind
		f["involvedObject.namespace"] = o.InvolvedObject.Namespace
		f["involvedObject.name"] = o.InvolvedObject.Name
		f["involvedObject.uid"] = string(o.InvolvedObject.UID)
		f["involvedObject.apiVersion"] = o.InvolvedObject.APIVersion
		f["involvedObject.resourceVersion"] = o.InvolvedObject.ResourceVersion
		f["involvedObject.fieldPath"] = o.InvolvedObject.FieldPath
		f["reason"] = o.Reason
		f["reportingComponent"] = o.ReportingController
		f["source"] = o.Source.Component
		f["type"] = o.Type
	case *corev1.Secret:
		f["type"] = string(o.Type)
	case *corev1.Node:
		f["spec.unschedulable"] = strconv.FormatBool(o.Spec.Unschedulable)
	case *corev1.Namespace:
		f["status.phase"] = string(o.Status.Phase)
	case *corev1.ReplicationController:
		f["status.replicas"] = strconv.Itoa(int(o.Status.Replicas))
	case *appsv1.ReplicaSet:
		f["status.replicas"] = strconv.Itoa(int(o.Status.Replicas))
	case *batchv1.Job:
		f["status.successful"] = strconv.Itoa(int(o.Status.Succeeded))
	}
	return f
}

// parseFieldSelector parses s and checks that every field it names is one the
// resource offers.
func parseFieldSelector(res store.Resource, s string) (fields.Selector, error) {
	if s == "" {
		return fields.Everything(), nil
	}
	sel, err := fields.ParseSelector(s)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("fieldSelector %q: %v", s, err))
	}
	zero, err := res.New()
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	known := objectFields(res, zero)
	for _, req := range sel.Requirements() {
		if _, ok := known[req.Field]; !ok {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported for %s: %q (supported: %s)", res.Plural, req.Field, supportedFields(known)))
		}
	}
	return sel, nil
}

func supportedFields(f fields.Set) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	return fmt.Sprint(sortStrings(keys))
}
