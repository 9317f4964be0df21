package agent

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// eventComponent is the source the agent's events name, as the kubelet's
// do, so `kubectl describe pod` reads as people know it.
const eventComponent = "kubelet"

// newRecorder returns client-go's event recorder, which aggregates similar
// events into one with a count and rate-limits each object's (a burst of
// 25, then one per 5 minutes) as upstream does, writing through the API.
// stop flushes nothing and ends its goroutines.
func newRecorder(ctx context.Context, client kubernetes.Interface, node string) (rec record.EventRecorder, stop func()) {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(eventSink{ctx: ctx, events: client.CoreV1()})
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: eventComponent, Host: node}), b.Shutdown
}

// eventSink writes events. keelson's API takes no patches, so the
// aggregation's patch (a repeat's count, time and message) is an update
// of the event as it is now.
type eventSink struct {
	ctx    context.Context
	events typedcorev1.EventsGetter
}

func (s eventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	return s.events.Events(e.Namespace).Create(s.ctx, e, metav1.CreateOptions{})
}

func (s eventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	return s.events.Events(e.Namespace).Update(s.ctx, e, metav1.UpdateOptions{})
}

func (s eventSink) Patch(e *corev1.Event, _ []byte) (*corev1.Event, error) {
	cur, err := s.events.Events(e.Namespace).Get(s.ctx, e.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	cur.Count, cur.LastTimestamp, cur.Message = e.Count, e.LastTimestamp, e.Message
	return s.Update(cur)
}
