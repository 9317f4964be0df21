package apiserver

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/keelson/keelson/store"
)

var podColumns = []column{nameCol,
	col("Ready", func(o store.Object) any {
		p := o.(*corev1.Pod)
		ready := 0
		for _, c := range p.Status.ContainerStatuses {
			if c.Ready {
				ready++
			}
		}
		return fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
	}),
	col("Status", func(o store.Object) any { return podStatus(o.(*corev1.Pod)) }),
	col("Restarts", func(o store.Object) any {
		var n int32
		for _, c := range o.(*corev1.Pod).Status.ContainerStatuses {
			n += c.RestartCount
		}
		return strconv.Itoa(int(n))
	}),
	ageCol,
	wide(col("IP", func(o store.Object) any { return orNone(o.(*corev1.Pod).Status.PodIP) })),
	wide(col("Node", func(o store.Object) any { return orNone(o.(*corev1.Pod).Spec.NodeName) })),
	wide(col("Nominated Node", func(o store.Object) any { return orNone(o.(*corev1.Pod).Status.NominatedNodeName) })),
}

// podStatus is the STATUS kubectl shows: the reason a container waits or
// ended, else the phase; Terminating while being deleted.
func podStatus(p *corev1.Pod) string {
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	for _, c := range p.Status.ContainerStatuses {
		switch {
		case c.State.Waiting != nil && c.State.Waiting.Reason != "":
			reason = c.State.Waiting.Reason
		case c.State.Terminated != nil && c.State.Terminated.Reason != "":
			reason = c.State.Terminated.Reason
		}
	}
	if p.DeletionTimestamp != nil {
		reason = "Terminating"
	}
	if reason == "" {
		reason = "Pending"
	}
	return reason
}

var deploymentColumns = []column{nameCol,
	col("Ready", func(o store.Object) any {
		d := o.(*appsv1.Deployment)
		return fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, ptrOr(d.Spec.Replicas, 1))
	}),
	col("Up-to-date", func(o store.Object) any { return int64(o.(*appsv1.Deployment).Status.UpdatedReplicas) }),
	col("Available", func(o store.Object) any { return int64(o.(*appsv1.Deployment).Status.AvailableReplicas) }),
	ageCol,
	wide(col("Containers", func(o store.Object) any { return containerNames(o.(*appsv1.Deployment).Spec.Template.Spec.Containers) })),
	wide(col("Images", func(o store.Object) any { return containerImages(o.(*appsv1.Deployment).Spec.Template.Spec.Containers) })),
	wide(col("Selector", func(o store.Object) any {
		return metav1.FormatLabelSelector(o.(*appsv1.Deployment).Spec.Selector)
	})),
}

func containerNames(cs []corev1.Container) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return strings.Join(names, ",")
}

func containerImages(cs []corev1.Container) string {
	images := make([]string, len(cs))
	for i, c := range cs {
		images[i] = c.Image
	}
	return strings.Join(images, ",")
}

var serviceColumns = []column{nameCol,
	col("Type", func(o store.Object) any { return string(o.(*corev1.Service).Spec.Type) }),
	col("Cluster-IP", func(o store.Object) any { return orNone(o.(*corev1.Service).Spec.ClusterIP) }),
	col("External-IP", func(o store.Object) any {
		s := o.(*corev1.Service)
		var ips []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP)
		}
		ips = append(ips, s.Spec.ExternalIPs...)
		return orNone(strings.Join(ips, ","))
	}),
	col("Port(s)", func(o store.Object) any {
		var ports []string
		for _, p := range o.(*corev1.Service).Spec.Ports {
			s := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
			if p.NodePort != 0 {
				s = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
			}
			ports = append(ports, s)
		}
		return orNone(strings.Join(ports, ","))
	}),
	ageCol,
}

var nodeColumns = []column{nameCol,
	col("Status", func(o store.Object) any {
		n := o.(*corev1.Node)
		status := "Unknown"
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				status = map[corev1.ConditionStatus]string{corev1.ConditionTrue: "Ready", corev1.ConditionFalse: "NotReady"}[c.Status]
				if status == "" {
					status = "Unknown"
				}
			}
		}
		if n.Spec.Unschedulable {
			status += ",SchedulingDisabled"
		}
		return status
	}),
	col("Roles", func(o store.Object) any {
		var roles []string
		for k := range o.GetLabels() {
			if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok {
				roles = append(roles, r)
			}
		}
		sort.Strings(roles)
		return orNone(strings.Join(roles, ","))
	}),
	ageCol,
	col("Version", func(o store.Object) any { return o.(*corev1.Node).Status.NodeInfo.KubeletVersion }),
	wide(col("Internal-IP", func(o store.Object) any {
		for _, a := range o.(*corev1.Node).Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				return a.Address
			}
		}
		return "<none>"
	})),
}

var eventColumns = []column{
	col("Last Seen", func(o store.Object) any {
		e := o.(*corev1.Event)
		t := e.LastTimestamp
		if t.IsZero() {
			t = metav1.Time{Time: e.EventTime.Time}
		}
		return age(t)
	}),
	col("Type", func(o store.Object) any { return o.(*corev1.Event).Type }),
	col("Reason", func(o store.Object) any { return o.(*corev1.Event).Reason }),
	col("Object", func(o store.Object) any {
		e := o.(*corev1.Event)
		return strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
	}),
	col("Message", func(o store.Object) any { return strings.TrimSpace(o.(*corev1.Event).Message) }),
}

// jobStatus is a Job's STATUS as kubectl prints it: its terminal
// condition, Terminating, Suspended, an interim condition, or Running.
func jobStatus(j *batchv1.Job) string {
	has := func(t batchv1.JobConditionType) bool {
		for _, c := range j.Status.Conditions {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}
	switch {
	case has(batchv1.JobComplete):
		return "Complete"
	case has(batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case has(batchv1.JobSuspended):
		return "Suspended"
	case has(batchv1.JobFailureTarget):
		return "FailureTarget"
	case has(batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}

// jobCompletions is "succeeded/completions", and for a Job without
// completions "succeeded/1", with "of parallelism" when several run.
func jobCompletions(j *batchv1.Job) string {
	if j.Spec.Completions != nil {
		return fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	}
	if p := ptrOr(j.Spec.Parallelism, 0); p > 1 {
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, p)
	}
	return fmt.Sprintf("%d/1", j.Status.Succeeded)
}

// jobDuration is how long the Job ran, or has been running.
func jobDuration(j *batchv1.Job) string {
	switch {
	case j.Status.StartTime == nil:
		return ""
	case j.Status.CompletionTime == nil:
		return duration.HumanDuration(time.Since(j.Status.StartTime.Time))
	}
	return duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
}
