package schema

import (
	"fmt"
	"net/netip"

	"cuelang.org/go/cue"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// nodeLeaseNamespace holds the heartbeat Leases the agents renew; a Lease
// from Git there would be overwritten by one side or the other for ever.
const nodeLeaseNamespace = "kube-node-lease"

// checkStored applies the cross-field rules of the kinds keelson stores
// without acting on them, as the Kubernetes API server would on create.
func checkStored(obj runtime.Object) []fieldProblem {
	switch o := obj.(type) {
	case *rbacv1.RoleBinding:
		return checkSubjects(o.Subjects, true)
	case *rbacv1.ClusterRoleBinding:
		return checkSubjects(o.Subjects, false)
	case *policyv1.PodDisruptionBudget:
		if o.Spec.MinAvailable != nil && o.Spec.MaxUnavailable != nil {
			return []fieldProblem{{sels("spec", "maxUnavailable"), "minAvailable and maxUnavailable cannot both be set: a budget says one or the other"}}
		}
	case *networkingv1.NetworkPolicy:
		return checkNetworkPolicy(&o.Spec)
	case *networkingv1.IngressClass:
		return checkIngressClassParameters(o.Spec.Parameters)
	case *admissionv1.ValidatingWebhookConfiguration:
		cfgs := make([]admissionv1.WebhookClientConfig, len(o.Webhooks))
		names := make([]string, len(o.Webhooks))
		for i, w := range o.Webhooks {
			cfgs[i], names[i] = w.ClientConfig, w.Name
		}
		return checkWebhooks(names, cfgs)
	case *admissionv1.MutatingWebhookConfiguration:
		cfgs := make([]admissionv1.WebhookClientConfig, len(o.Webhooks))
		names := make([]string, len(o.Webhooks))
		for i, w := range o.Webhooks {
			cfgs[i], names[i] = w.ClientConfig, w.Name
		}
		return checkWebhooks(names, cfgs)
	case *storagev1.VolumeAttachment:
		if (o.Spec.Source.PersistentVolumeName == nil) == (o.Spec.Source.InlineVolumeSpec == nil) {
			return []fieldProblem{{sels("spec", "source"), "must set exactly one of persistentVolumeName and inlineVolumeSpec"}}
		}
	case *coordinationv1.Lease:
		if o.Namespace == nodeLeaseNamespace {
			return []fieldProblem{{sels("metadata", "namespace"), "must not be kube-node-lease: it holds the nodes' heartbeat Leases, which their agents write"}}
		}
	}
	return nil
}

// checkSubjects applies Kubernetes' rules for a subject of each kind: a
// ServiceAccount is in the core group and, bound cluster-wide, needs its
// namespace; users and groups are RBAC's own.
func checkSubjects(subjects []rbacv1.Subject, namespaced bool) []fieldProblem {
	var ps []fieldProblem
	for i, s := range subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			if s.APIGroup != "" {
				ps = append(ps, fieldProblem{sels("subjects", i, "apiGroup"), fmt.Sprintf("must be empty for a ServiceAccount (the core group), got %q", s.APIGroup)})
			}
			for _, msg := range validation.IsDNS1123Subdomain(s.Name) {
				ps = append(ps, fieldProblem{sels("subjects", i, "name"), "must be a ServiceAccount name: " + msg})
			}
			if s.Namespace == "" && !namespaced {
				ps = append(ps, fieldProblem{sels("subjects", i, "namespace"), "required field is missing: a ClusterRoleBinding must say which namespace the ServiceAccount is in"})
			}
		case rbacv1.UserKind, rbacv1.GroupKind:
			if s.APIGroup != "" && s.APIGroup != rbacv1.GroupName {
				ps = append(ps, fieldProblem{sels("subjects", i, "apiGroup"), fmt.Sprintf("must be %s for a %s, got %q", rbacv1.GroupName, s.Kind, s.APIGroup)})
			}
		}
	}
	return ps
}

func checkNetworkPolicy(spec *networkingv1.NetworkPolicySpec) []fieldProblem {
	var ps []fieldProblem
	for i, r := range spec.Ingress {
		ps = append(ps, checkPeers(r.From, sels("spec", "ingress", i, "from"))...)
		ps = append(ps, checkPolicyPorts(r.Ports, sels("spec", "ingress", i, "ports"))...)
	}
	for i, r := range spec.Egress {
		ps = append(ps, checkPeers(r.To, sels("spec", "egress", i, "to"))...)
		ps = append(ps, checkPolicyPorts(r.Ports, sels("spec", "egress", i, "ports"))...)
	}
	return ps
}

// checkPeers requires each ipBlock to be a CIDR, with its exceptions inside
// it, and a peer to be either an ipBlock or selectors, not both.
func checkPeers(peers []networkingv1.NetworkPolicyPeer, path []cue.Selector) []fieldProblem {
	var ps []fieldProblem
	for i, p := range peers {
		if p.IPBlock == nil {
			continue
		}
		at := join(path, i, "ipBlock")
		if p.PodSelector != nil || p.NamespaceSelector != nil {
			ps = append(ps, fieldProblem{at, "must not be set together with podSelector or namespaceSelector: a peer is one or the other"})
		}
		cidr, err := netip.ParsePrefix(p.IPBlock.CIDR)
		if err != nil {
			ps = append(ps, fieldProblem{join(at, "cidr"), fmt.Sprintf("must be a CIDR such as 10.0.0.0/8, got %q", p.IPBlock.CIDR)})
			continue
		}
		for j, e := range p.IPBlock.Except {
			ex, err := netip.ParsePrefix(e)
			switch {
			case err != nil:
				ps = append(ps, fieldProblem{join(at, "except", j), fmt.Sprintf("must be a CIDR such as 10.1.0.0/16, got %q", e)})
			case ex.Bits() <= cidr.Bits() || !cidr.Contains(ex.Addr()):
				ps = append(ps, fieldProblem{join(at, "except", j), fmt.Sprintf("must be a strict subset of cidr %s, got %s", p.IPBlock.CIDR, e)})
			}
		}
	}
	return ps
}

// checkPolicyPorts: a range (endPort) needs a numeric port at most endPort.
func checkPolicyPorts(ports []networkingv1.NetworkPolicyPort, path []cue.Selector) []fieldProblem {
	var ps []fieldProblem
	for i, p := range ports {
		if p.EndPort == nil {
			continue
		}
		switch {
		case p.Port == nil || p.Port.Type != intstr.Int:
			ps = append(ps, fieldProblem{join(path, i, "endPort"), "may only be set with a numeric port"})
		case *p.EndPort < p.Port.IntVal:
			ps = append(ps, fieldProblem{join(path, i, "endPort"), fmt.Sprintf("must be at least port %d", p.Port.IntVal)})
		}
	}
	return ps
}

func checkIngressClassParameters(p *networkingv1.IngressClassParametersReference) []fieldProblem {
	if p == nil {
		return nil
	}
	at := sels("spec", "parameters", "namespace")
	namespaced := p.Scope != nil && *p.Scope == networkingv1.IngressClassParametersReferenceScopeNamespace
	switch {
	case namespaced && p.Namespace == nil:
		return []fieldProblem{{at, "required field is missing: parameters of scope Namespace name their namespace"}}
	case !namespaced && p.Namespace != nil:
		return []fieldProblem{{at, "must be empty: only parameters of scope Namespace have a namespace"}}
	}
	return nil
}

// checkWebhooks requires unique webhook names and each webhook to be
// reached either by URL or through a Service.
func checkWebhooks(names []string, cfgs []admissionv1.WebhookClientConfig) []fieldProblem {
	var ps []fieldProblem
	seen := map[string]bool{}
	for i, name := range names {
		if seen[name] {
			ps = append(ps, fieldProblem{sels("webhooks", i, "name"), fmt.Sprintf("duplicate webhook name %q: names must be unique within a configuration", name)})
		}
		seen[name] = true
		if (cfgs[i].URL == nil) == (cfgs[i].Service == nil) {
			ps = append(ps, fieldProblem{sels("webhooks", i, "clientConfig"), "must set exactly one of url and service"})
		}
	}
	return ps
}
