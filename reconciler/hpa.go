package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

// PodMetricsSource is where the autoscaler reads pods' usage: keelson
// server gives it its API, which asks every node agent, as metrics-server
// does for kube-controller-manager.
type PodMetricsSource interface {
	// PodUsage returns the usage of every pod the nodes run, by pod.
	PodUsage(ctx context.Context) (map[types.NamespacedName]PodUsage, error)
}

// HPAOptions tune the HorizontalPodAutoscaler controller.
type HPAOptions struct {
	// SyncPeriod is how often each autoscaler is computed again. Default
	// 15 s, kube-controller-manager's.
	SyncPeriod time.Duration
	// Metrics gives the pods' usage; without it every autoscaler says it
	// cannot get metrics (ScalingActive False).
	Metrics PodMetricsSource
	// DownscaleStabilization is the scale-down stabilization window of an
	// autoscaler whose behavior sets none. Default 5 minutes,
	// kube-controller-manager's.
	DownscaleStabilization time.Duration
	// Clock tells the time; the real one when nil.
	Clock clock.PassiveClock
}

// HPAController scales Deployments, ReplicaSets and StatefulSets as their
// HorizontalPodAutoscalers (autoscaling/v2) ask, from the pods' CPU and
// memory usage: Kubernetes' algorithm (usage over target, 10% tolerance,
// unready and missing pods damping the change), its behavior (stabilization
// windows, rate policies) and its status, conditions and Events.
type HPAController struct {
	*Controller
	st      *store.Store
	hpas    cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	targets map[string]cache.SharedIndexInformer // by kind
	rec     *Recorder
	opts    HPAOptions

	mu      sync.Mutex
	history map[string]*hpaHistory // by HPA key

	usageMu sync.Mutex
	usage   map[string]map[string]PodUsage // by namespace, then pod
	usageAt time.Time
}

var hpaGVK = autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler")

// NewHPAController returns the autoscaler, registered on the informers.
func NewHPAController(st *store.Store, inf *Informers, rec *Recorder, opts HPAOptions, qopts QueueOptions, log *slog.Logger) *HPAController {
	if opts.SyncPeriod <= 0 {
		opts.SyncPeriod = 15 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.DownscaleStabilization <= 0 {
		opts.DownscaleStabilization = defaultDownscaleStabilization
	}
	c := &HPAController{
		st: st, hpas: inf.For(store.MustResource("horizontalpodautoscalers.autoscaling")), pods: inf.For(store.MustResource("pods")),
		targets: map[string]cache.SharedIndexInformer{
			"Deployment":  inf.For(store.MustResource("deployments.apps")),
			"ReplicaSet":  inf.For(store.MustResource("replicasets.apps")),
			"StatefulSet": inf.For(store.MustResource("statefulsets.apps")),
		},
		rec: rec, opts: opts, history: map[string]*hpaHistory{},
	}
	c.Controller = NewController("horizontalpodautoscaler", c, qopts, log)
	c.hpas.AddEventHandler(c.Handler(SelfKeys))
	return c
}

// scaleTarget is what the autoscaler reads of the object it scales.
type scaleTarget struct {
	replicas       int32 // spec.replicas
	statusReplicas int32
	selector       labels.Selector
}

func (c *HPAController) target(hpa *autoscalingv2.HorizontalPodAutoscaler) (scaleTarget, error) {
	ref := hpa.Spec.ScaleTargetRef
	inf, ok := c.targets[ref.Kind]
	if !ok || !strings.HasPrefix(ref.APIVersion, "apps/") {
		return scaleTarget{}, fmt.Errorf("%s %s cannot be scaled: keelson scales apps/v1 Deployments, ReplicaSets and StatefulSets", ref.APIVersion, ref.Kind)
	}
	obj, ok, _ := inf.GetIndexer().GetByKey(hpa.Namespace + "/" + ref.Name)
	if !ok {
		return scaleTarget{}, fmt.Errorf("%s %s/%s not found", ref.Kind, hpa.Namespace, ref.Name)
	}
	var t scaleTarget
	var sel *metav1.LabelSelector
	switch o := obj.(type) {
	case *appsv1.Deployment:
		t.replicas, t.statusReplicas, sel = ptr.Deref(o.Spec.Replicas, 1), o.Status.Replicas, o.Spec.Selector
	case *appsv1.ReplicaSet:
		t.replicas, t.statusReplicas, sel = ptr.Deref(o.Spec.Replicas, 1), o.Status.Replicas, o.Spec.Selector
	case *appsv1.StatefulSet:
		t.replicas, t.statusReplicas, sel = ptr.Deref(o.Spec.Replicas, 1), o.Status.Replicas, o.Spec.Selector
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return scaleTarget{}, fmt.Errorf("%s %s/%s: selector %v selects no pods of its own: %v", ref.Kind, hpa.Namespace, ref.Name, sel, err)
	}
	t.selector = s
	return t, nil
}

// Reconcile computes one autoscaler: the replicas its metrics ask for,
// bounded by its behavior and min and max, written to the target when they
// differ from its count, and the autoscaler's status.
func (c *HPAController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.hpas.GetIndexer().GetByKey(key)
	if !ok {
		c.mu.Lock()
		delete(c.history, key)
		c.mu.Unlock()
		return Result{}, nil
	}
	hpa := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if hpa.DeletionTimestamp != nil {
		return Result{}, nil
	}
	now := c.opts.Clock.Now()
	status := hpa.Status.DeepCopy()
	status.ObservedGeneration = ptr.To(hpa.Generation)
	conds := &hpaConditions{status: status, now: metav1.NewTime(now)}

	t, err := c.target(hpa)
	if err != nil {
		conds.set(autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale", "the HPA controller was unable to get the target's current scale: %v", err)
		c.rec.Eventf(hpa, corev1.EventTypeWarning, "FailedGetScale", "%v", err)
		return c.finish(ctx, hpa, status)
	}
	status.CurrentReplicas = t.statusReplicas
	minReplicas := ptr.Deref(hpa.Spec.MinReplicas, 1)
	desired, why := t.replicas, ""
	switch {
	case t.replicas == 0 && minReplicas != 0:
		conds.set(autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")
	case t.replicas > hpa.Spec.MaxReplicas:
		desired, why = hpa.Spec.MaxReplicas, "Current number of replicas above Spec.MaxReplicas"
		conds.set(autoscalingv2.ScalingLimited, corev1.ConditionTrue, "TooManyReplicas", "the desired replica count is more than the maximum replica count")
	case t.replicas < minReplicas:
		desired, why = minReplicas, "Current number of replicas below Spec.MinReplicas"
		conds.set(autoscalingv2.ScalingLimited, corev1.ConditionTrue, "TooFewReplicas", "the desired replica count is less than the minimum replica count")
	default:
		proposal, metricWhy, metrics, err := c.computeReplicas(ctx, hpa, t, now)
		if err != nil {
			reason := "FailedGetResourceMetric"
			if metrics != nil {
				reason = "FailedComputeMetricsReplicas"
			}
			conds.set(autoscalingv2.ScalingActive, corev1.ConditionFalse, reason, "the HPA was unable to compute the replica count: %v", err)
			c.rec.Eventf(hpa, corev1.EventTypeWarning, reason, "%v", err)
			status.CurrentMetrics = metrics
			return c.finish(ctx, hpa, status)
		}
		status.CurrentMetrics = metrics
		conds.set(autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", "the HPA was able to successfully calculate a replica count from %s", metricWhy)
		b := hpaBehavior(hpa.Spec.Behavior, c.opts.DownscaleStabilization)
		c.mu.Lock()
		h := c.historyOf(key)
		stable, reason, msg := h.stabilize(b, t.replicas, proposal, now)
		conds.set(autoscalingv2.AbleToScale, corev1.ConditionTrue, reason, "%s", msg)
		desired, reason, msg = h.limit(b, t.replicas, stable, minReplicas, hpa.Spec.MaxReplicas, now)
		c.mu.Unlock()
		if desired == stable {
			conds.set(autoscalingv2.ScalingLimited, corev1.ConditionFalse, reason, "%s", msg)
		} else {
			conds.set(autoscalingv2.ScalingLimited, corev1.ConditionTrue, reason, "%s", msg)
		}
		why = "All metrics below target"
		if desired > t.replicas {
			why = metricWhy + " above target"
		}
	}
	status.DesiredReplicas = desired
	if desired != t.replicas && !(t.replicas == 0 && minReplicas != 0) {
		changed, err := c.scale(ctx, hpa, desired)
		if err != nil {
			conds.set(autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedUpdateScale", "the HPA controller was unable to update the target scale: %v", err)
			c.rec.Eventf(hpa, corev1.EventTypeWarning, "FailedRescale", "New size: %d; reason: %s; error: %v", desired, why, err)
			_, _ = c.finish(ctx, hpa, status)
			return Result{}, err
		}
		if !changed {
			return c.finish(ctx, hpa, status)
		}
		c.mu.Lock()
		c.historyOf(key).record(hpaBehavior(hpa.Spec.Behavior, c.opts.DownscaleStabilization), t.replicas, desired, now)
		c.mu.Unlock()
		status.LastScaleTime = ptr.To(metav1.NewTime(now))
		conds.set(autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale", "the HPA controller was able to update the target scale to %d", desired)
		c.rec.Eventf(hpa, corev1.EventTypeNormal, "SuccessfulRescale", "New size: %d; reason: %s", desired, why)
	}
	return c.finish(ctx, hpa, status)
}

// historyOf returns key's history, made when missing. Callers hold c.mu.
func (c *HPAController) historyOf(key string) *hpaHistory {
	h, ok := c.history[key]
	if !ok {
		h = &hpaHistory{}
		c.history[key] = h
	}
	return h
}

// finish writes status when it changed and comes back after the sync
// period.
func (c *HPAController) finish(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, status *autoscalingv2.HorizontalPodAutoscalerStatus) (Result, error) {
	if !equality.Semantic.DeepEqual(*status, hpa.Status) {
		out := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: hpa.Namespace, Name: hpa.Name, ResourceVersion: hpa.ResourceVersion}, Status: *status}
		if err := c.st.UpdateStatus(ctx, out); err != nil && !errors.Is(err, store.ErrNotFound) {
			return Result{}, fmt.Errorf("horizontalpodautoscaler %s/%s: write status: %w", hpa.Namespace, hpa.Name, err)
		}
	}
	return Result{RequeueAfter: c.opts.SyncPeriod}, nil
}

// computeReplicas asks every metric of hpa for a replica count and takes
// the largest; it returns the name of the metric that asked for it, as
// upstream names it in conditions and Events, and the current
// metrics for the status. A metric that cannot be computed fails the pass
// when no other metric can be, or when the others would scale down.
func (c *HPAController) computeReplicas(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, t scaleTarget, now time.Time) (int32, string, []autoscalingv2.MetricStatus, error) {
	if len(hpa.Spec.Metrics) == 0 {
		return 0, "", nil, errors.New("no metrics: give spec.metrics (a Resource metric of cpu or memory)")
	}
	usage, err := c.podUsage(ctx, hpa.Namespace)
	if err != nil {
		return 0, "", nil, fmt.Errorf("unable to get metrics for resource usage: %w", err)
	}
	pods := Selected[*corev1.Pod](c.pods, hpa.Namespace, t.selector)
	var best int32
	var bestName string
	var statuses []autoscalingv2.MetricStatus
	var errs []error
	for i, m := range hpa.Spec.Metrics {
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
			errs = append(errs, fmt.Errorf("metrics[%d]: type %s: keelson computes Resource metrics (cpu, memory) only", i, m.Type))
			continue
		}
		r := m.Resource
		var targetValue int64
		var what string
		switch {
		case r.Target.Type == autoscalingv2.UtilizationMetricType && r.Target.AverageUtilization != nil:
			what = fmt.Sprintf("%s resource utilization (percentage of request)", r.Name)
		case r.Target.Type == autoscalingv2.AverageValueMetricType && r.Target.AverageValue != nil:
			targetValue, what = r.Target.AverageValue.MilliValue(), fmt.Sprintf("%s resource", r.Name)
		default:
			errs = append(errs, fmt.Errorf("metrics[%d]: resource %s: target %s needs averageUtilization or averageValue", i, r.Name, r.Target.Type))
			continue
		}
		var util *int32
		if r.Target.Type == autoscalingv2.UtilizationMetricType {
			util = r.Target.AverageUtilization
		}
		p, err := resourceReplicas(t.replicas, pods, usage, r.Name, util, targetValue, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			continue
		}
		st := autoscalingv2.MetricStatus{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: r.Name, Current: autoscalingv2.MetricValueStatus{AverageUtilization: p.utilization, AverageValue: resource.NewMilliQuantity(p.value, quantityFormat(r.Name))},
		}}
		statuses = append(statuses, st)
		if p.replicas > best || bestName == "" {
			best, bestName = p.replicas, what
		}
	}
	if len(errs) > 0 && (len(statuses) == 0 || best < t.replicas) {
		return 0, "", statuses, errors.Join(errs...)
	}
	return best, bestName, statuses, nil
}

func quantityFormat(r corev1.ResourceName) resource.Format {
	if r == corev1.ResourceCPU {
		return resource.DecimalSI
	}
	return resource.BinarySI
}

// podUsage returns the usage of namespace's pods, by name, from a snapshot
// of every node's taken at most half a sync period ago: one round of the
// agents serves every autoscaler of a pass. The map is shared: read only.
func (c *HPAController) podUsage(ctx context.Context, namespace string) (map[string]PodUsage, error) {
	if c.opts.Metrics == nil {
		return nil, errors.New("no metrics source (the resource metrics API)")
	}
	c.usageMu.Lock()
	defer c.usageMu.Unlock()
	// Freshness by the machine's clock, not opts.Clock: samples age in
	// real time whatever time the autoscaling decisions are made at.
	if c.usage == nil || time.Since(c.usageAt) > c.opts.SyncPeriod/2 {
		u, err := c.opts.Metrics.PodUsage(ctx)
		if err != nil {
			return nil, err
		}
		byNS := map[string]map[string]PodUsage{}
		for k, pu := range u {
			if byNS[k.Namespace] == nil {
				byNS[k.Namespace] = map[string]PodUsage{}
			}
			byNS[k.Namespace][k.Name] = pu
		}
		c.usage, c.usageAt = byNS, time.Now()
	}
	return c.usage[namespace], nil // read only: replaced whole, never changed
}

// scale writes replicas into the target's spec, a compare-and-swap on the
// version read; changed is false when the stored target already has them
// (the informer's copy was behind a write of an earlier pass).
func (c *HPAController) scale(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, replicas int32) (changed bool, err error) {
	ref := hpa.Spec.ScaleTargetRef
	var obj store.Object
	var spec *int32
	switch ref.Kind {
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "ReplicaSet":
		obj = &appsv1.ReplicaSet{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	default:
		return false, fmt.Errorf("%s cannot be scaled", ref.Kind)
	}
	if err := c.st.Get(ctx, hpa.Namespace, ref.Name, obj); err != nil {
		return false, err
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		spec, o.Spec.Replicas = o.Spec.Replicas, &replicas
	case *appsv1.ReplicaSet:
		spec, o.Spec.Replicas = o.Spec.Replicas, &replicas
	case *appsv1.StatefulSet:
		spec, o.Spec.Replicas = o.Spec.Replicas, &replicas
	}
	if ptr.Deref(spec, 1) == replicas {
		// The cache was behind: an earlier pass already wrote this count.
		return false, nil
	}
	return true, c.st.Update(ctx, obj)
}

// hpaConditions sets an autoscaler's conditions, keeping a condition's
// transition time while its status stays.
type hpaConditions struct {
	status *autoscalingv2.HorizontalPodAutoscalerStatus
	now    metav1.Time
}

func (h *hpaConditions) set(typ autoscalingv2.HorizontalPodAutoscalerConditionType, st corev1.ConditionStatus, reason, format string, args ...any) {
	c := autoscalingv2.HorizontalPodAutoscalerCondition{Type: typ, Status: st, Reason: reason, Message: fmt.Sprintf(format, args...), LastTransitionTime: h.now}
	for i, old := range h.status.Conditions {
		if old.Type != typ {
			continue
		}
		if old.Status == st {
			c.LastTransitionTime = old.LastTransitionTime
		}
		h.status.Conditions[i] = c
		return
	}
	h.status.Conditions = append(h.status.Conditions, c)
}
