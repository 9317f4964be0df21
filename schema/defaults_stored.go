package schema

import (
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// setStoredDefaults fills what the API server fills in the kinds keelson
// stores without acting on them, so that what `keelson get` shows is what a
// Kubernetes cluster would hold: a diff against one stays quiet.
func setStoredDefaults(obj runtime.Object) {
	switch o := obj.(type) {
	case *rbacv1.RoleBinding:
		defaultBinding(&o.RoleRef, o.Subjects)
	case *rbacv1.ClusterRoleBinding:
		defaultBinding(&o.RoleRef, o.Subjects)
	case *schedulingv1.PriorityClass:
		if o.PreemptionPolicy == nil {
			o.PreemptionPolicy = ptr(corev1.PreemptLowerPriority)
		}
	case *networkingv1.NetworkPolicy:
		defaultNetworkPolicy(&o.Spec)
	case *networkingv1.IngressClass:
		if p := o.Spec.Parameters; p != nil && p.Scope == nil {
			p.Scope = ptr(networkingv1.IngressClassParametersReferenceScopeCluster)
		}
	case *admissionv1.ValidatingWebhookConfiguration:
		for i := range o.Webhooks {
			w := &o.Webhooks[i]
			defaultWebhook(&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, &w.ClientConfig, w.Rules)
		}
	case *admissionv1.MutatingWebhookConfiguration:
		for i := range o.Webhooks {
			w := &o.Webhooks[i]
			defaultWebhook(&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, &w.ClientConfig, w.Rules)
			if w.ReinvocationPolicy == nil {
				w.ReinvocationPolicy = ptr(admissionv1.NeverReinvocationPolicy)
			}
		}
	case *admissionv1.ValidatingAdmissionPolicy:
		if o.Spec.FailurePolicy == nil {
			o.Spec.FailurePolicy = ptr(admissionv1.Fail)
		}
	case *storagev1.CSIDriver:
		defaultCSIDriver(&o.Spec)
	case *corev1.PodTemplate:
		defaultPodSpec(&o.Template.Spec, corev1.RestartPolicyAlways)
	case *flowcontrolv1.FlowSchema:
		if o.Spec.MatchingPrecedence == 0 {
			o.Spec.MatchingPrecedence = 1000
		}
	case *flowcontrolv1.PriorityLevelConfiguration:
		if l := o.Spec.Limited; l != nil {
			l.NominalConcurrencyShares = orInt32(l.NominalConcurrencyShares, 30)
			l.LendablePercent = orInt32(l.LendablePercent, 0)
		}
	}
}

// defaultBinding fills the API groups Kubernetes fills: RBAC's for the role
// and for users and groups, the core group (empty) for service accounts.
func defaultBinding(ref *rbacv1.RoleRef, subjects []rbacv1.Subject) {
	if ref.APIGroup == "" {
		ref.APIGroup = rbacv1.GroupName
	}
	for i := range subjects {
		if s := &subjects[i]; s.APIGroup == "" && (s.Kind == rbacv1.UserKind || s.Kind == rbacv1.GroupKind) {
			s.APIGroup = rbacv1.GroupName
		}
	}
}

// defaultNetworkPolicy sets TCP on ports without a protocol, and policy
// types from the rules written: Ingress always, Egress when there are
// egress rules.
func defaultNetworkPolicy(s *networkingv1.NetworkPolicySpec) {
	tcp := func(ports []networkingv1.NetworkPolicyPort) {
		for i := range ports {
			if ports[i].Protocol == nil {
				ports[i].Protocol = ptr(corev1.ProtocolTCP)
			}
		}
	}
	for i := range s.Ingress {
		tcp(s.Ingress[i].Ports)
	}
	for i := range s.Egress {
		tcp(s.Egress[i].Ports)
	}
	if len(s.PolicyTypes) == 0 {
		s.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(s.Egress) > 0 {
			s.PolicyTypes = append(s.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
}

func defaultWebhook(failure **admissionv1.FailurePolicyType, match **admissionv1.MatchPolicyType,
	nsSel, objSel **metav1.LabelSelector, timeout **int32, cfg *admissionv1.WebhookClientConfig, rules []admissionv1.RuleWithOperations) {
	if *failure == nil {
		*failure = ptr(admissionv1.Fail)
	}
	if *match == nil {
		*match = ptr(admissionv1.Equivalent)
	}
	if *nsSel == nil {
		*nsSel = &metav1.LabelSelector{}
	}
	if *objSel == nil {
		*objSel = &metav1.LabelSelector{}
	}
	*timeout = orInt32(*timeout, 10)
	if cfg.Service != nil {
		cfg.Service.Port = orInt32(cfg.Service.Port, 443)
	}
	for i := range rules {
		if rules[i].Scope == nil {
			rules[i].Scope = ptr(admissionv1.AllScopes)
		}
	}
}

func defaultCSIDriver(s *storagev1.CSIDriverSpec) {
	if s.AttachRequired == nil {
		s.AttachRequired = ptr(true)
	}
	if s.PodInfoOnMount == nil {
		s.PodInfoOnMount = ptr(false)
	}
	if s.StorageCapacity == nil {
		s.StorageCapacity = ptr(false)
	}
	if s.FSGroupPolicy == nil {
		s.FSGroupPolicy = ptr(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy)
	}
	if len(s.VolumeLifecycleModes) == 0 {
		s.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}
	}
	if s.RequiresRepublish == nil {
		s.RequiresRepublish = ptr(false)
	}
}
