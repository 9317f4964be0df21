package ui

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/keelson/keelson/store"
)

// info is the few words a tree shows beside an object, as kubectl get's
// columns would.
func info(obj store.Object) string {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return fmt.Sprintf("%d/%d ready", o.Status.ReadyReplicas, replicas(o.Spec.Replicas))
	case *appsv1.StatefulSet:
		return fmt.Sprintf("%d/%d ready", o.Status.ReadyReplicas, replicas(o.Spec.Replicas))
	case *appsv1.ReplicaSet:
		return fmt.Sprintf("%d/%d ready", o.Status.ReadyReplicas, replicas(o.Spec.Replicas))
	case *appsv1.DaemonSet:
		return fmt.Sprintf("%d/%d ready", o.Status.NumberReady, o.Status.DesiredNumberScheduled)
	case *batchv1.Job:
		return fmt.Sprintf("%d succeeded, %d failed", o.Status.Succeeded, o.Status.Failed)
	case *corev1.Service:
		return strings.TrimSpace(string(o.Spec.Type) + " " + o.Spec.ClusterIP)
	case *corev1.PersistentVolumeClaim:
		return string(o.Status.Phase)
	case *discoveryv1.EndpointSlice:
		ready := 0
		for _, e := range o.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				ready++
			}
		}
		return fmt.Sprintf("%d/%d endpoints ready", ready, len(o.Endpoints))
	case *corev1.Pod:
		return podSummary(o)
	}
	return ""
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// podSummary is a pod's phase, or the reason a container waits, and its
// restarts.
func podSummary(p *corev1.Pod) string {
	status := string(p.Status.Phase)
	restarts := int32(0)
	for _, c := range p.Status.ContainerStatuses {
		restarts += c.RestartCount
		if w := c.State.Waiting; w != nil && w.Reason != "" {
			status = w.Reason
		}
	}
	if p.DeletionTimestamp != nil {
		status = "Terminating"
	}
	switch restarts {
	case 0:
		return status
	case 1:
		return status + ", 1 restart"
	}
	return fmt.Sprintf("%s, %d restarts", status, restarts)
}
