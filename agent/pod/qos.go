package pod

import (
	corev1 "k8s.io/api/core/v1"
)

// QOSClass is the pod's quality of service class, as Kubernetes computes it:
// Guaranteed when every container sets CPU and memory limits equal to its
// requests, BestEffort when none sets any, Burstable otherwise.
func QOSClass(p *corev1.Pod) corev1.PodQOSClass {
	any, guaranteed := false, true
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[name]
				lim, hasLim := c.Resources.Limits[name]
				if hasReq || hasLim {
					any = true
				}
				if !hasLim || (hasReq && req.Cmp(lim) != 0) {
					guaranteed = false
				}
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}
