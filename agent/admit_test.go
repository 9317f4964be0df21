package agent

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

func podAsking(uid string, cpu, mem string, init ...string) *corev1.Pod {
	p := &corev1.Pod{}
	p.UID = types.UID(uid)
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	p.Spec.Containers = []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: req}}, {Resources: corev1.ResourceRequirements{Requests: req}}}
	for _, m := range init {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(m)}}})
	}
	return p
}

func TestAdmit(t *testing.T) {
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	running := podAsking("a", "500m", "256Mi") // asks 1 CPU, 512Mi in all
	done := podAsking("b", "2", "1Gi")
	done.Status.Phase = corev1.PodSucceeded
	cases := []struct {
		name   string
		pod    *corev1.Pod
		reason string
	}{
		{"fits", podAsking("p", "250m", "128Mi"), ""},
		{"no requests", podAsking("p", "", ""), ""},
		{"exactly fills", podAsking("p", "500m", "256Mi"), ""},
		{"too much memory", podAsking("p", "100m", "300Mi"), "OutOfmemory"},
		{"too much cpu", podAsking("p", "600m", "1Mi"), "OutOfcpu"},
		{"init container counts when larger", podAsking("p", "", "", "600Mi"), "OutOfmemory"},
	}
	for _, tc := range cases {
		reason, msg := admit(tc.pod, []*corev1.Pod{running, done, tc.pod}, alloc)
		if reason != tc.reason {
			t.Errorf("%s: reason %q (%s), want %q", tc.name, reason, msg, tc.reason)
		}
		if reason != "" && !strings.Contains(msg, "Node didn't have enough resource") {
			t.Errorf("%s: message %q", tc.name, msg)
		}
	}
}
