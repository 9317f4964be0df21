package health

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/admission"
	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/internal/servicenet"
)

// volumeHealth: a volume Available, Bound or Released (kept, by its
// reclaim policy) does what it should; Pending is on its way; Failed says
// why.
func volumeHealth(v *corev1.PersistentVolume) Health {
	switch v.Status.Phase {
	case corev1.VolumeFailed:
		return Health{Degraded, cmp.Or(v.Status.Message, "volume failed")}
	case corev1.VolumePending, "":
		return Health{Progressing, "volume is not available yet"}
	case corev1.VolumeReleased:
		return Health{Healthy, "its claim is gone; the volume and its data are kept (reclaim policy Retain)"}
	}
	return Health{Status: Healthy}
}

// claimHealth is Argo CD's rule for claims: Bound is Healthy, Pending is
// Progressing, Lost is Degraded.
func claimHealth(c *corev1.PersistentVolumeClaim) Health {
	switch c.Status.Phase {
	case corev1.ClaimBound:
		return Health{Status: Healthy}
	case corev1.ClaimLost:
		return Health{Degraded, fmt.Sprintf("claim lost its volume %s", c.Spec.VolumeName)}
	}
	return Health{Progressing, "claim is not bound yet"}
}

// serviceHealth: a service refused its address or a node port is Degraded;
// one still waiting for them is Progressing.
func serviceHealth(s *corev1.Service) Health {
	if c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionIPAllocated); c != nil && c.Status == metav1.ConditionFalse {
		return Health{Degraded, c.Message}
	}
	if h, other := otherLoadBalancer(s); other {
		return h
	}
	if s.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.ClusterIP == "" {
		return Health{Progressing, "waiting for a cluster IP"}
	}
	if servicenet.AllocatesNodePorts(s) {
		for _, p := range s.Spec.Ports {
			if p.NodePort == 0 {
				return Health{Progressing, "waiting for a node port"}
			}
		}
	}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		return loadBalancerHealth(s)
	}
	return Health{Status: Healthy}
}

// loadBalancerHealth is Argo CD's rule for LoadBalancer services (Healthy
// once the status holds an address, Progressing before), with what
// keelson's load balancer controller says: Degraded while the cloud
// provider fails or there is none. (A service of a load balancer class is
// otherLoadBalancer's.)
func loadBalancerHealth(s *corev1.Service) Health {
	if c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionLoadBalancer); c != nil && c.Status == metav1.ConditionFalse {
		return Health{Degraded, c.Message}
	}
	if len(s.Status.LoadBalancer.Ingress) == 0 {
		return Health{Progressing, "waiting for a load balancer address"}
	}
	return Health{Status: Healthy}
}

// otherLoadBalancer is the health of a LoadBalancer service of a load
// balancer class, which another implementation serves, and keelson has
// none: Unsupported until something gives it an address, whatever else it
// waits for. other is false for any other service.
func otherLoadBalancer(s *corev1.Service) (h Health, other bool) {
	c := s.Spec.LoadBalancerClass
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer || c == nil {
		return Health{}, false
	}
	if len(s.Status.LoadBalancer.Ingress) > 0 {
		return Health{Status: Healthy}, true
	}
	return Health{Unsupported, fmt.Sprintf("keelson has no load balancer of class %s: nothing gives the service an address", *c)}, true
}

// ingressHealth is Argo CD's rule for Ingresses, Healthy once the status
// holds an address, Progressing before; an Ingress of a class no
// controller of keelson's serves is Unsupported.
func ingressHealth(ing *networkingv1.Ingress, classes ingressclass.Classes) Health {
	if len(ing.Status.LoadBalancer.Ingress) > 0 {
		return Health{Status: Healthy}
	}
	if !ingressclass.Served(ing, classes) {
		return Health{Unsupported, fmt.Sprintf("keelson's ingress proxy serves the IngressClasses of controller %s (keelson's own is %q, the default): no controller serves class %q, so the Ingress routes no traffic",
			ingressclass.Controller, ingressclass.Name, ingressclass.ClassName(ing))}
	}
	return Health{Progressing, "waiting for the ingress proxy's addresses"}
}

// ingressClassHealth: a class of another controller is one nothing in
// keelson serves.
func ingressClassHealth(c *networkingv1.IngressClass) Health {
	if c.Spec.Controller != ingressclass.Controller {
		return Health{Unsupported, fmt.Sprintf("no controller in keelson serves IngressClasses of controller %q (keelson's is %s): Ingresses of class %q route no traffic",
			c.Spec.Controller, ingressclass.Controller, c.Name)}
	}
	return Health{Status: Healthy}
}

// hpaHealth: Progressing until the autoscaler has computed this generation,
// Degraded while it cannot get its target or compute from its metrics (a
// target scaled to zero is its owner's choice), Healthy otherwise.
func hpaHealth(h *autoscalingv2.HorizontalPodAutoscaler) Health {
	if h.Status.ObservedGeneration == nil || *h.Status.ObservedGeneration < h.Generation || len(h.Status.Conditions) == 0 {
		return Health{Progressing, "waiting for the autoscaler to compute this generation"}
	}
	for _, c := range h.Status.Conditions {
		switch {
		case c.Type == autoscalingv2.AbleToScale && c.Status == corev1.ConditionFalse,
			c.Type == autoscalingv2.ScalingActive && c.Status == corev1.ConditionFalse && c.Reason != "ScalingDisabled":
			return Health{Degraded, fmt.Sprintf("%s: %s", c.Reason, c.Message)}
		}
	}
	return Health{Status: Healthy}
}

// quotaHealth: Progressing until the quota is counted, Degraded while its
// namespace uses more than it allows (its limits were lowered below what
// runs: nothing more is admitted), Healthy otherwise.
func quotaHealth(q *corev1.ResourceQuota) Health {
	if !admission.Current(q) {
		return Health{Progressing, "waiting for the quota's usage to be counted"}
	}
	var over []string
	for name, hard := range q.Spec.Hard {
		if used := q.Status.Used[name]; used.Cmp(hard) > 0 {
			over = append(over, fmt.Sprintf("%s %s of %s", name, used.String(), hard.String()))
		}
	}
	if len(over) > 0 {
		slices.Sort(over)
		return Health{Degraded, "the namespace uses more than its quota allows: " + strings.Join(over, ", ")}
	}
	return Health{Status: Healthy}
}

// budgetHealth: Progressing until the budget is counted, Degraded while
// fewer of its pods are healthy than it needs (nothing can be evicted),
// Healthy otherwise.
func budgetHealth(b *policyv1.PodDisruptionBudget) Health {
	s := b.Status
	if s.ObservedGeneration < b.Generation || b.Generation == 0 && len(s.Conditions) == 0 {
		return Health{Progressing, "waiting for the budget's pods to be counted"}
	}
	if s.CurrentHealthy < s.DesiredHealthy {
		return Health{Degraded, fmt.Sprintf("%d healthy pods of the %d the budget needs", s.CurrentHealthy, s.DesiredHealthy)}
	}
	return Health{Status: Healthy}
}

// nodePolicyHealth is Degraded while the policy is in conflict, Progressing
// until its status is for its generation and every node carries it.
func nodePolicyHealth(p *keelsonv1alpha1.NodePolicy) Health {
	c := meta.FindStatusCondition(p.Status.Conditions, keelsonv1alpha1.ConditionReady)
	switch {
	case c == nil || p.Status.ObservedGeneration != p.Generation:
		return Health{Progressing, "NodePolicy is being applied"}
	case c.Status == metav1.ConditionTrue:
		return Health{Status: Healthy}
	case c.Reason == keelsonv1alpha1.ReasonConflict:
		return Health{Degraded, c.Message}
	}
	return Health{Progressing, c.Message}
}
