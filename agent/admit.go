package agent

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// podRequests is what a pod asks of a node, as Kubernetes counts it: the sum
// of its containers' requests, or its largest init container's if larger
// (init containers run one at a time, before the others).
func podRequests(p *corev1.Pod) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for _, c := range p.Spec.Containers {
		for name, q := range c.Resources.Requests {
			cur := sum[name]
			cur.Add(q)
			sum[name] = cur
		}
	}
	for _, c := range p.Spec.InitContainers {
		for name, q := range c.Resources.Requests {
			if cur, ok := sum[name]; !ok || q.Cmp(cur) > 0 {
				sum[name] = q.DeepCopy()
			}
		}
	}
	return sum
}

func active(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// admit checks, as the kubelet does before it runs a pod, that the pod fits in
// what the node's other active pods leave of its allocatable CPU and memory.
// It returns the reason and message of the rejection, or "" when it fits.
func admit(p *corev1.Pod, others []*corev1.Pod, allocatable corev1.ResourceList) (string, string) {
	want := podRequests(p)
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, ok := want[name]
		capacity, known := allocatable[name]
		if !ok || !known || req.IsZero() {
			continue
		}
		used := resource.Quantity{}
		for _, o := range others {
			if o.UID == p.UID || !active(o) {
				continue
			}
			if q, ok := podRequests(o)[name]; ok {
				used.Add(q)
			}
		}
		total := used.DeepCopy()
		total.Add(req)
		if total.Cmp(capacity) > 0 {
			return "OutOf" + string(name), fmt.Sprintf("Pod was rejected: Node didn't have enough resource: %s, requested: %s, used: %s, capacity: %s",
				name, req.String(), used.String(), capacity.String())
		}
	}
	return "", ""
}
