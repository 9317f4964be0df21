package pod

import (
	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
)

// Recorder records a pod's events, as the kubelet does; client-go's
// record.EventRecorder is one, which aggregates similar events and
// rate-limits them as upstream does.
type Recorder interface {
	Event(object k8sruntime.Object, eventType, reason, message string)
}

// event is an event to record once a step has run.
type event struct {
	typ, reason, message string
}

// record records e of the pod, if there is a recorder and an event.
func (r *Runner) record(p *corev1.Pod, e *event) {
	if e != nil && r.cfg.Recorder != nil {
		r.cfg.Recorder.Event(p, e.typ, e.reason, e.message)
	}
}

// recordf records an event of the pod.
func (r *Runner) recordf(p *corev1.Pod, typ, reason, message string) {
	r.record(p, &event{typ, reason, message})
}
