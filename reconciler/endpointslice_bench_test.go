package reconciler

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// BenchmarkEndpointSliceUpdate is issue 15's endpoint figure on the control
// plane's side: with 1,000 services of 10 ready pods each in the store, one
// pod's readiness is flipped b.N times; it reports the time from the pod's
// status write to the EndpointSlice change seen by a watch (p50, p95), and
// the slices written per flip (1 when only the changed slice is written).
//
//	go test -run '^$' -bench EndpointSliceUpdate -benchtime 200x ./reconciler/
func BenchmarkEndpointSliceUpdate(b *testing.B) {
	const services, perService = 1000, 10
	st := etcdtest.NewStore(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	var objs []store.Object
	for s := range services {
		app := fmt.Sprintf("app-%04d", s)
		objs = append(objs, epService(app, map[string]string{"app": app}, httpToWeb))
		for p := range perService {
			n := s*perService + p
			objs = append(objs, epPod(fmt.Sprintf("%s-%d", app, p), app, fmt.Sprintf("10.42.%d.%d", n/250, n%250+1), true))
		}
	}
	benchCreate(b, st, objs)
	go func() {
		defer close(done)
		Run(ctx, st, testLog(), Options{LeaderElection: LeaderElection{Disabled: true},
			Scheduler: SchedulerOptions{Disabled: true}, NodeLifecycle: NodeLifecycleOptions{Disabled: true}})
	}()
	rv := waitAllSlices(b, st, services*perService)
	w, err := st.Watch(ctx, store.MustResource("endpointslices.discovery.k8s.io"), store.WatchOptions{ResourceVersion: rv})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	pod := objs[1].(*corev1.Pod)
	latencies := make([]time.Duration, 0, b.N)
	writes := 0
	b.ResetTimer()
	for i := range b.N {
		ready := i%2 == 1
		start := time.Now()
		if err := st.Update(ctx, withReady(pod, ready)); err != nil {
			b.Fatal(err)
		}
		writes += waitFlip(b, w, pod.Labels["app"], pod.Status.PodIP, ready)
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	// Writes a flip would cause after the one awaited show up here.
	writes += drain(w, 500*time.Millisecond)
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[(len(latencies)*95)/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(writes)/float64(b.N), "slices/flip")
}

func benchCreate(b *testing.B, st *store.Store, objs []store.Object) {
	for len(objs) > 0 {
		n := min(len(objs), 500)
		ops := make([]store.Op, n)
		for i, o := range objs[:n] {
			ops[i] = store.CreateOp(o)
		}
		if err := st.Txn(b.Context(), ops...); err != nil {
			b.Fatal(err)
		}
		objs = objs[n:]
	}
}

// withReady sets the pod's readiness; the pod keeps the resourceVersion of
// the write, so the next flip is a compare-and-swap on it.
func withReady(p *corev1.Pod, ready bool) *corev1.Pod {
	setReady(ready)(p)
	return p
}

// waitAllSlices waits until the controller's slices hold n ready endpoints
// and returns the list's resourceVersion.
func waitAllSlices(b *testing.B, st *store.Store, n int) string {
	sel := labels.SelectorFromSet(labels.Set{servicenet.LabelManagedBy: servicenet.EndpointSliceManagedBy})
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		l, err := st.List(b.Context(), store.MustResource("endpointslices.discovery.k8s.io"), store.ListOptions{Selector: sel})
		if err != nil {
			b.Fatal(err)
		}
		ready := 0
		for _, o := range l.Items {
			ready += len(readyIPs([]*discoveryv1.EndpointSlice{o.(*discoveryv1.EndpointSlice)}))
		}
		if ready == n {
			return l.ResourceVersion
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("the slices never held %d ready endpoints", n)
	return ""
}

// waitFlip reads slice events until the service's slice shows ip with the
// readiness asked for; it returns how many slice writes it saw.
func waitFlip(b *testing.B, w watch.Interface, svc, ip string, ready bool) int {
	n := 0
	for {
		var ev watch.Event
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				b.Fatal("slice watch ended")
			}
			ev = e
		case <-time.After(time.Minute):
			b.Fatal("no slice change in a minute")
		}
		s, ok := ev.Object.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[servicenet.LabelManagedBy] != servicenet.EndpointSliceManagedBy {
			continue
		}
		n++
		if s.Labels[servicenet.LabelServiceName] != svc {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Addresses[0] == ip && ptr.Deref(e.Conditions.Ready, false) == ready {
				return n
			}
		}
	}
}

// drain counts the controller's slice writes seen within d.
func drain(w watch.Interface, d time.Duration) int {
	n := 0
	timeout := time.After(d)
	for {
		select {
		case ev := <-w.ResultChan():
			if s, ok := ev.Object.(*discoveryv1.EndpointSlice); ok && s.Labels[servicenet.LabelManagedBy] == servicenet.EndpointSliceManagedBy {
				n++
			}
		case <-timeout:
			return n
		}
	}
}
