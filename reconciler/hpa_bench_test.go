package reconciler

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// staticUsage gives every pod of a fixed set the same CPU usage.
type staticUsage map[types.NamespacedName]PodUsage

func (s staticUsage) PodUsage(context.Context) (map[types.NamespacedName]PodUsage, error) {
	return s, nil
}

// BenchmarkHPAPass: 1,000 autoscalers, each of a Deployment of 3 running
// pods at their target, computed once each, as one sync period's pass; the
// figure is the CPU the process spends on a pass (goal ≤ 1 s), beside its
// wall time. The pass after the first writes nothing: the statuses stand.
func BenchmarkHPAPass(b *testing.B) {
	const n, podsEach = 1000, 3
	st := etcdtest.NewStore(b)
	ctx := context.Background()
	now := time.Now()
	usage := staticUsage{}
	var ops []store.Op
	flush := func() {
		if err := st.Txn(ctx, ops...); err != nil {
			b.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := range n {
		name := fmt.Sprintf("web-%04d", i)
		d := newDeployment(name, podsEach, "localhost/web:1")
		ops = append(ops, store.CreateOp(d), store.CreateOp(&autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
				MinReplicas:    ptr.To[int32](1), MaxReplicas: 10,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)}}}},
			}}))
		for j := range podsEach {
			p := hpaPod(fmt.Sprintf("%s-%d", name, j), 100, now, corev1.PodRunning, true)
			p.Labels = map[string]string{"app": name}
			ops = append(ops, store.CreateOp(p))
			usage[types.NamespacedName{Namespace: "default", Name: p.Name}] = PodUsage{Timestamp: now, Window: 10 * time.Second,
				Usage: corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(50, resource.DecimalSI)}}
		}
		if len(ops) >= 100 {
			flush()
		}
	}
	flush()
	inf := NewInformers(st, 0, testLog())
	c := NewHPAController(st, inf, NewRecorder(st, "bench", testLog()), HPAOptions{SyncPeriod: time.Hour, Metrics: usage}, QueueOptions{}, testLog())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	inf.Start(runCtx)
	if !inf.WaitForSync(runCtx) {
		b.Fatal("informers did not sync")
	}
	pass := func() {
		for i := range n {
			if _, err := c.Reconcile(ctx, fmt.Sprintf("default/web-%04d", i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	pass() // the first pass writes every status
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		done := 0
		for _, o := range c.hpas.GetStore().List() {
			if o.(*autoscalingv2.HorizontalPodAutoscaler).Status.ObservedGeneration != nil {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d statuses reached the cache", done, n)
		}
	}
	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		before := cpuTime()
		pass()
		cpu += cpuTime() - before
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/pass")
	var h autoscalingv2.HorizontalPodAutoscaler
	if err := st.Get(ctx, "default", "web-0000", &h); err != nil || h.Status.DesiredReplicas != podsEach {
		b.Fatalf("autoscaler web-0000: %+v %v, want %d desired", h.Status, err, podsEach)
	}
}

// cpuTime is the CPU the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
