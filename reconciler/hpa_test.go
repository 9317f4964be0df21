package reconciler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// hpaPod is a running pod started long ago, Ready since, requesting
// cpuRequest millicores (none when 0).
func hpaPod(name string, cpuRequest int64, now time.Time, phase corev1.PodPhase, ready bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	c := corev1.Container{Name: "main"}
	if cpuRequest > 0 {
		c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(cpuRequest, resource.DecimalSI)}
	}
	p.Spec.Containers = []corev1.Container{c}
	p.Status.Phase = phase
	start := metav1.NewTime(now.Add(-time.Hour))
	p.Status.StartTime = &start
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionFalse
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.NewTime(now.Add(-50 * time.Minute))}}
	return p
}

func cpuUsage(m map[string]int64, now time.Time) map[string]PodUsage {
	out := map[string]PodUsage{}
	for name, milli := range m {
		out[name] = PodUsage{Timestamp: now, Window: 10 * time.Second, Usage: corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(milli, resource.DecimalSI)}}
	}
	return out
}

// The replica calculator gives what Kubernetes' gives for the same pods
// and usage (cases from its replica_calculator tests' shapes).
func TestResourceReplicas(t *testing.T) {
	now := time.Now()
	running := func(names ...string) []*corev1.Pod {
		var out []*corev1.Pod
		for _, n := range names {
			out = append(out, hpaPod(n, 1000, now, corev1.PodRunning, true))
		}
		return out
	}
	fifty := ptr.To[int32](50)
	tests := []struct {
		name    string
		current int32
		pods    []*corev1.Pod
		usage   map[string]int64
		util    *int32
		value   int64
		want    int32
		wantErr string
	}{
		{name: "scale up", current: 3, pods: running("a", "b", "c"), usage: map[string]int64{"a": 900, "b": 800, "c": 700}, util: fifty, want: 5}, // 80% over 50%: ceil(1.6×3)
		{name: "within tolerance", current: 3, pods: running("a", "b", "c"), usage: map[string]int64{"a": 520, "b": 530, "c": 540}, util: fifty, want: 3},
		{name: "scale down", current: 5, pods: running("a", "b", "c", "d", "e"), usage: map[string]int64{"a": 100, "b": 100, "c": 100, "d": 100, "e": 100}, util: fifty, want: 1},
		// 10% alone would ask for 1; the missing pod counted at its request, 3.
		{name: "missing pods damp a scale down", current: 5, pods: running("a", "b", "c", "d", "e"), usage: map[string]int64{"a": 100, "b": 100, "c": 100, "d": 100}, util: fifty, want: 3},
		{name: "missing pods damp a scale up", current: 4, pods: running("a", "b", "c", "d"), usage: map[string]int64{"a": 1000, "b": 1000}, util: fifty, want: 4},
		{name: "unready pods count as idle when scaling up", current: 3,
			pods:  append(running("a", "b"), hpaPod("c", 1000, now, corev1.PodPending, false)),
			usage: map[string]int64{"a": 900, "b": 900}, util: fifty, want: 4},
		{name: "ignored pods", current: 3,
			pods:  append(running("a", "b"), hpaPod("c", 1000, now, corev1.PodFailed, false)),
			usage: map[string]int64{"a": 500, "b": 500, "c": 5000}, util: fifty, want: 3},
		{name: "other pods of the namespace do not count", current: 2, pods: running("a", "b"), usage: map[string]int64{"a": 500, "b": 500, "other": 9000}, util: fifty, want: 2},
		{name: "average value", current: 2, pods: running("a", "b"), usage: map[string]int64{"a": 600, "b": 600}, value: 200, want: 6},
		{name: "no request", current: 1, pods: []*corev1.Pod{hpaPod("a", 0, now, corev1.PodRunning, true)}, usage: map[string]int64{"a": 100}, util: fifty,
			wantErr: "missing request for cpu in container main of pod a"},
		{name: "no pods", current: 1, util: fifty, wantErr: "no pods match"},
		{name: "no metrics", current: 2, pods: running("a", "b"), usage: map[string]int64{}, util: fifty, wantErr: "no metrics of cpu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := resourceReplicas(tc.current, tc.pods, cpuUsage(tc.usage, now), corev1.ResourceCPU, tc.util, tc.value, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || p.replicas != tc.want {
				t.Fatalf("replicas %d, %v; want %d", p.replicas, err, tc.want)
			}
		})
	}
}

// A pod within its CPU initialization period counts only once Ready and
// sampled after; later, a pod that became unready after being ready counts.
func TestCPUNotReadyYet(t *testing.T) {
	now := time.Now()
	young := hpaPod("a", 100, now, corev1.PodRunning, true)
	young.Status.StartTime = ptr.To(metav1.NewTime(now.Add(-time.Minute)))
	young.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-30 * time.Second))
	if cpuNotReadyYet(young, resourceSample{timestamp: now, window: 10 * time.Second}, now) {
		t.Error("a young ready pod sampled after it became ready is not counted")
	}
	if !cpuNotReadyYet(young, resourceSample{timestamp: now.Add(-25 * time.Second), window: 10 * time.Second}, now) {
		t.Error("a young pod sampled over a window starting before it was ready is counted")
	}
	old := hpaPod("b", 100, now, corev1.PodRunning, false)
	if cpuNotReadyYet(old, resourceSample{timestamp: now}, now) {
		t.Error("an old pod that turned unready long after its start is not counted")
	}
}

func rules(window int32, policy autoscalingv2.ScalingPolicySelect, ps ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(window), SelectPolicy: ptr.To(policy), Policies: ps}
}

// Behavior: the defaults scale up by 4 pods or 100% per 15 s, whichever is
// more; the scale-down window holds the highest recent recommendation;
// policies count the changes already made in their period.
func TestHPABehavior(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	b := hpaBehavior(nil, defaultDownscaleStabilization)
	h := &hpaHistory{}
	if n, _, _ := h.limit(b, 2, 20, 1, 50, now); n != 6 {
		t.Errorf("default scale-up limit from 2: %d, want 6 (2 + 4 pods)", n)
	}
	if n, _, _ := h.limit(b, 10, 50, 1, 50, now); n != 20 {
		t.Errorf("default scale-up limit from 10: %d, want 20 (100%%)", n)
	}
	if n, reason, _ := h.limit(b, 10, 60, 1, 15, now); n != 15 || reason != "TooManyReplicas" {
		t.Errorf("limit at max: %d %s", n, reason)
	}
	h.record(b, 10, 20, now)
	if n, reason, _ := h.limit(b, 20, 60, 1, 100, now.Add(5*time.Second)); n != 20 || reason != "ScaleUpLimit" {
		t.Errorf("a second scale up within the period: %d %s, want 20 ScaleUpLimit (the period started at 10)", n, reason)
	}
	if n, _, _ := h.limit(b, 20, 60, 1, 100, now.Add(16*time.Second)); n != 40 {
		t.Errorf("after the period: %d, want 40", n)
	}

	// Stabilization: the default 300 s scale-down window.
	h = &hpaHistory{}
	for i, rec := range []int32{8, 5, 3} {
		got, _, _ := h.stabilize(b, 8, rec, now.Add(time.Duration(i)*time.Minute))
		if got != 8 {
			t.Errorf("minute %d, recommendation %d: %d, want 8 (held by the window)", i, rec, got)
		}
	}
	if got, reason, _ := h.stabilize(b, 8, 3, now.Add(6*time.Minute)); got != 3 || reason != "ReadyForNewScale" {
		t.Errorf("after the window: %d %s, want 3", got, reason)
	}

	// Scale down by at most 1 pod per 60 s, Min of two policies.
	b = hpaBehavior(&autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rules(0, autoscalingv2.MinChangePolicySelect,
		autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 60},
		autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: 50, PeriodSeconds: 60})}, defaultDownscaleStabilization)
	h = &hpaHistory{}
	if n, reason, _ := h.limit(b, 10, 2, 1, 20, now); n != 9 || reason != "ScaleDownLimit" {
		t.Errorf("scale down, one pod a minute: %d %s, want 9", n, reason)
	}
	h.record(b, 10, 9, now)
	if n, _, _ := h.limit(b, 9, 2, 1, 20, now.Add(30*time.Second)); n != 9 {
		t.Errorf("again within the minute: %d, want 9", n)
	}
	b.ScaleDown.SelectPolicy = ptr.To(autoscalingv2.DisabledPolicySelect)
	if n, _, _ := h.limit(b, 9, 2, 1, 20, now.Add(time.Hour)); n != 9 {
		t.Errorf("scale down disabled: %d, want 9", n)
	}
}

// fakeUsage is a metrics source a test sets: each pod of the namespace
// uses milli millicores of CPU.
type fakeUsage struct {
	mu    sync.Mutex
	st    *store.Store
	milli int64
	fail  error
}

func (f *fakeUsage) set(milli int64) { f.mu.Lock(); f.milli = milli; f.mu.Unlock() }

func (f *fakeUsage) PodUsage(ctx context.Context) (map[types.NamespacedName]PodUsage, error) {
	f.mu.Lock()
	milli, fail := f.milli, f.fail
	f.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	pods, err := f.st.List(ctx, store.MustResource("pods"), store.ListOptions{Namespace: "default"})
	if err != nil {
		return nil, err
	}
	out := map[types.NamespacedName]PodUsage{}
	for _, o := range pods.Items {
		if o.(*corev1.Pod).Status.Phase == corev1.PodRunning {
			out[types.NamespacedName{Namespace: "default", Name: o.GetName()}] = PodUsage{Timestamp: time.Now(), Window: time.Second,
				Usage: corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(milli, resource.DecimalSI)}}
		}
	}
	return out, nil
}

// TestHPAScalesDeployment: with the real controllers on a real etcd, an
// autoscaler scales a busy Deployment up (4 pods at a time, as the default
// policy allows), holds it while the scale-down window lasts on its
// injected clock, then scales it down; status, conditions and Events say
// so. A failing metrics source makes ScalingActive False and scales nothing.
func TestHPAScalesDeployment(t *testing.T) {
	st := etcdtest.NewStore(t)
	startFakeNode(t, st, fakenode.Options{})
	usage := &fakeUsage{st: st, milli: 400}
	clock := clocktesting.NewFakePassiveClock(time.Now())
	opts := testOptions()
	opts.HPA = HPAOptions{SyncPeriod: 100 * time.Millisecond, Metrics: usage, Clock: clock}
	startControllers(t, st, opts)
	ctx := t.Context()

	d := newDeployment("web", 1, "localhost/web:1")
	d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](1), MaxReplicas: 8,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)}}}},
		}}
	for _, o := range []store.Object{d, hpa} {
		if err := st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	replicas := func() int32 {
		var cur = newDeployment("web", 0, "")
		if err := st.Get(ctx, "default", "web", cur); err != nil {
			t.Fatal(err)
		}
		return *cur.Spec.Replicas
	}
	getHPA := func() *autoscalingv2.HorizontalPodAutoscaler {
		var h autoscalingv2.HorizontalPodAutoscaler
		if err := st.Get(ctx, "default", "web", &h); err != nil {
			t.Fatal(err)
		}
		return &h
	}
	// 400% of the request against 50%: 8 wanted; 1 → 5 (4 pods a period),
	// then, with the clock past the period, 8 (the maximum).
	// The controller writes the scale before the status that says why:
	// wait for both.
	eventually(t, "scaled up to 5, ScalingLimited True ScaleUpLimit", func() (bool, string) {
		h := getHPA()
		c := hpaCondition(h, autoscalingv2.ScalingLimited)
		return replicas() == 5 && c != nil && c.Status == corev1.ConditionTrue && c.Reason == "ScaleUpLimit", fmt.Sprint(replicas(), " ", h.Status)
	})
	clock.SetTime(clock.Now().Add(16 * time.Second))
	eventually(t, "scaled up to the maximum", func() (bool, string) {
		h := getHPA()
		return replicas() == 8 && h.Status.DesiredReplicas == 8 && h.Status.CurrentReplicas == 8, fmt.Sprint(replicas(), " ", h.Status)
	})
	h := getHPA()
	if c := hpaCondition(h, autoscalingv2.ScalingActive); c == nil || c.Status != corev1.ConditionTrue || c.Reason != "ValidMetricFound" {
		t.Errorf("ScalingActive %+v", c)
	}
	if len(h.Status.CurrentMetrics) != 1 || ptr.Deref(h.Status.CurrentMetrics[0].Resource.Current.AverageUtilization, 0) != 400 {
		t.Errorf("current metrics %+v, want 400%% utilization", h.Status.CurrentMetrics)
	}
	eventually(t, "a SuccessfulRescale event", func() (bool, string) {
		evs := eventsFor(t, st, "HorizontalPodAutoscaler", "web")
		return strings.Contains(evs, "SuccessfulRescale New size: 8; reason: cpu resource utilization (percentage of request) above target"), evs
	})

	// Idle: 10% wants 2 pods, but the 300 s window holds 8 until it passes.
	usage.set(10)
	clock.SetTime(clock.Now().Add(2 * time.Minute))
	eventually(t, "the window holding the count", func() (bool, string) {
		c := hpaCondition(getHPA(), autoscalingv2.AbleToScale)
		return c != nil && c.Reason == "ScaleDownStabilized", fmt.Sprint(c)
	})
	if n := replicas(); n != 8 {
		t.Fatalf("scaled down to %d within the stabilization window", n)
	}
	clock.SetTime(clock.Now().Add(6 * time.Minute))
	eventually(t, "scaled down", func() (bool, string) { return replicas() == 2, fmt.Sprint(replicas()) })

	usage.mu.Lock()
	usage.fail = fmt.Errorf("agents do not answer")
	usage.mu.Unlock()
	clock.SetTime(clock.Now().Add(time.Hour))
	eventually(t, "ScalingActive False", func() (bool, string) {
		c := hpaCondition(getHPA(), autoscalingv2.ScalingActive)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "FailedGetResourceMetric" && strings.Contains(c.Message, "agents do not answer"), fmt.Sprint(c)
	})
	if n := replicas(); n != 2 {
		t.Errorf("replicas %d without metrics, want 2 kept", n)
	}
	if hh := HealthOf(getHPA()); hh.Status != Degraded {
		t.Errorf("health %+v, want Degraded", hh)
	}
}

func hpaCondition(h *autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.HorizontalPodAutoscalerConditionType) *autoscalingv2.HorizontalPodAutoscalerCondition {
	for i := range h.Status.Conditions {
		if h.Status.Conditions[i].Type == typ {
			return &h.Status.Conditions[i]
		}
	}
	return nil
}

// eventsFor lists the Events of one object as "Reason Message" lines.
func eventsFor(t *testing.T, st *store.Store, kind, name string) string {
	t.Helper()
	l, err := st.List(t.Context(), store.MustResource("events"), store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, o := range l.Items {
		ev := o.(*corev1.Event)
		if ev.InvolvedObject.Kind == kind && ev.InvolvedObject.Name == name {
			fmt.Fprintf(&b, "%s %s\n", ev.Reason, ev.Message)
		}
	}
	return b.String()
}
