package schema

import (
	"sync"

	"cuelang.org/go/cue"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// kindInfo is one supported kind: where its definition is, which Go type it
// decodes into, and whether it lives in a namespace.
type kindInfo struct {
	apiVersion string
	kind       string
	namespaced bool
	newObj     func() runtime.Object
	def        cue.Value

	fastOnce sync.Once
	fast     *fastNode
}

// supported lists the kinds keelson accepts; the CUE definition of each is
// #<Kind> in cue/kinds.
var supported = []kindInfo{
	{apiVersion: "v1", kind: "Namespace", newObj: func() runtime.Object { return &corev1.Namespace{} }},
	{apiVersion: "v1", kind: "Pod", namespaced: true, newObj: func() runtime.Object { return &corev1.Pod{} }},
	{apiVersion: "v1", kind: "ReplicationController", namespaced: true, newObj: func() runtime.Object { return &corev1.ReplicationController{} }},
	{apiVersion: "v1", kind: "Service", namespaced: true, newObj: func() runtime.Object { return &corev1.Service{} }},
	{apiVersion: "v1", kind: "Endpoints", namespaced: true, newObj: func() runtime.Object { return &corev1.Endpoints{} }},
	{apiVersion: "v1", kind: "ConfigMap", namespaced: true, newObj: func() runtime.Object { return &corev1.ConfigMap{} }},
	{apiVersion: "v1", kind: "Secret", namespaced: true, newObj: func() runtime.Object { return &corev1.Secret{} }},
	{apiVersion: "v1", kind: "PersistentVolumeClaim", namespaced: true, newObj: func() runtime.Object { return &corev1.PersistentVolumeClaim{} }},
	{apiVersion: "v1", kind: "PersistentVolume", newObj: func() runtime.Object { return &corev1.PersistentVolume{} }},
	{apiVersion: "v1", kind: "ResourceQuota", namespaced: true, newObj: func() runtime.Object { return &corev1.ResourceQuota{} }},
	{apiVersion: "v1", kind: "LimitRange", namespaced: true, newObj: func() runtime.Object { return &corev1.LimitRange{} }},
	{apiVersion: "v1", kind: "ServiceAccount", namespaced: true, newObj: func() runtime.Object { return &corev1.ServiceAccount{} }},
	{apiVersion: "apps/v1", kind: "Deployment", namespaced: true, newObj: func() runtime.Object { return &appsv1.Deployment{} }},
	{apiVersion: "apps/v1", kind: "ReplicaSet", namespaced: true, newObj: func() runtime.Object { return &appsv1.ReplicaSet{} }},
	{apiVersion: "apps/v1", kind: "StatefulSet", namespaced: true, newObj: func() runtime.Object { return &appsv1.StatefulSet{} }},
	{apiVersion: "apps/v1", kind: "DaemonSet", namespaced: true, newObj: func() runtime.Object { return &appsv1.DaemonSet{} }},
	{apiVersion: "batch/v1", kind: "Job", namespaced: true, newObj: func() runtime.Object { return &batchv1.Job{} }},
	{apiVersion: "batch/v1", kind: "CronJob", namespaced: true, newObj: func() runtime.Object { return &batchv1.CronJob{} }},
	{apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", namespaced: true, newObj: func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} }},
	{apiVersion: "networking.k8s.io/v1", kind: "Ingress", namespaced: true, newObj: func() runtime.Object { return &networkingv1.Ingress{} }},
	{apiVersion: "storage.k8s.io/v1", kind: "StorageClass", newObj: func() runtime.Object { return &storagev1.StorageClass{} }},
	{apiVersion: "keelson.dev/v1alpha1", kind: "NodePolicy", newObj: func() runtime.Object { return &keelsonv1alpha1.NodePolicy{} }},
	{apiVersion: "keelson.dev/v1alpha1", kind: "HelmChart", namespaced: true, newObj: func() runtime.Object { return &keelsonv1alpha1.HelmChart{} }},
	{apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", namespaced: true, newObj: func() runtime.Object { return &rbacv1.Role{} }},
	{apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", namespaced: true, newObj: func() runtime.Object { return &rbacv1.RoleBinding{} }},
	{apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", newObj: func() runtime.Object { return &rbacv1.ClusterRole{} }},
	{apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", newObj: func() runtime.Object { return &rbacv1.ClusterRoleBinding{} }},
	{apiVersion: "policy/v1", kind: "PodDisruptionBudget", namespaced: true, newObj: func() runtime.Object { return &policyv1.PodDisruptionBudget{} }},
	{apiVersion: "scheduling.k8s.io/v1", kind: "PriorityClass", newObj: func() runtime.Object { return &schedulingv1.PriorityClass{} }},
	{apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", newObj: func() runtime.Object { return &nodev1.RuntimeClass{} }},
	{apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", newObj: func() runtime.Object { return &admissionv1.ValidatingWebhookConfiguration{} }},
	{apiVersion: "admissionregistration.k8s.io/v1", kind: "MutatingWebhookConfiguration", newObj: func() runtime.Object { return &admissionv1.MutatingWebhookConfiguration{} }},
	{apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicy", newObj: func() runtime.Object { return &admissionv1.ValidatingAdmissionPolicy{} }},
	{apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicyBinding", newObj: func() runtime.Object { return &admissionv1.ValidatingAdmissionPolicyBinding{} }},
	{apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", namespaced: true, newObj: func() runtime.Object { return &networkingv1.NetworkPolicy{} }},
	{apiVersion: "networking.k8s.io/v1", kind: "IngressClass", newObj: func() runtime.Object { return &networkingv1.IngressClass{} }},
	{apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespaced: true, newObj: func() runtime.Object { return &coordinationv1.Lease{} }},
	{apiVersion: "storage.k8s.io/v1", kind: "CSIDriver", newObj: func() runtime.Object { return &storagev1.CSIDriver{} }},
	{apiVersion: "storage.k8s.io/v1", kind: "VolumeAttachment", newObj: func() runtime.Object { return &storagev1.VolumeAttachment{} }},
	{apiVersion: "storage.k8s.io/v1", kind: "CSIStorageCapacity", namespaced: true, newObj: func() runtime.Object { return &storagev1.CSIStorageCapacity{} }},
	{apiVersion: "v1", kind: "PodTemplate", namespaced: true, newObj: func() runtime.Object { return &corev1.PodTemplate{} }},
	{apiVersion: "flowcontrol.apiserver.k8s.io/v1", kind: "FlowSchema", newObj: func() runtime.Object { return &flowcontrolv1.FlowSchema{} }},
	{apiVersion: "flowcontrol.apiserver.k8s.io/v1", kind: "PriorityLevelConfiguration", newObj: func() runtime.Object { return &flowcontrolv1.PriorityLevelConfiguration{} }},
}
