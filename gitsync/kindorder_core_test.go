package gitsync

import "testing"

// TestKindOrderCoreKinds: the kinds of Kubernetes' own API groups that
// keelson stores are applied where Helm installs them: policies with the
// namespace's quotas, RBAC with the service accounts it names, both before
// the workloads they concern; webhook configurations last, so that they
// never stand in front of the objects of their own revision.
func TestKindOrderCoreKinds(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
	}{
		{"namespace before its roles", "Namespace", "Role"},
		{"priority classes before pods", "PriorityClass", "Pod"},
		{"budgets before deployments", "PodDisruptionBudget", "Deployment"},
		{"network policies before services", "NetworkPolicy", "Service"},
		{"cluster roles before deployments", "ClusterRole", "Deployment"},
		{"role bindings before services", "RoleBinding", "Service"},
		{"priority levels before configuration", "PriorityLevelConfiguration", "ConfigMap"},
		{"ingress classes before services", "IngressClass", "Service"},
		{"webhooks after workloads", "Deployment", "ValidatingWebhookConfiguration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, a := kindOrder(tt.before), kindOrder(tt.after); b >= a {
				t.Errorf("kindOrder(%s) = %d, not before kindOrder(%s) = %d", tt.before, b, tt.after, a)
			}
		})
	}
}
