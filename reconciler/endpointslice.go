package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// Reasons of the servicenet.ConditionEndpointsReady condition of a Service.
const (
	// ReasonEndpointsReady: the service has at least one ready endpoint.
	ReasonEndpointsReady = "EndpointsReady"
	// ReasonNoPodsSelected: the selector matches no pod that is not finished.
	ReasonNoPodsSelected = "NoPodsSelected"
	// ReasonNoMatchingPort: no endpoint is ready and a named target port is
	// defined by none of the selected pods.
	ReasonNoMatchingPort = "NoMatchingPort"
	// ReasonNoReadyEndpoints: pods are selected but none is a ready endpoint.
	ReasonNoReadyEndpoints = "NoReadyEndpoints"
)

// staleRetry is when a service whose slices the cache does not show yet is
// looked at again, should no event of them come first.
const staleRetry = 250 * time.Millisecond

// EndpointsOptions tune the EndpointSlice, Endpoints and EndpointSlice
// mirroring controllers.
type EndpointsOptions struct {
	// MaxEndpointsPerSlice is how many endpoints one EndpointSlice holds at
	// most. Default 100, as in Kubernetes.
	MaxEndpointsPerSlice int
	// MaxEndpointsAddresses is how many addresses one Endpoints object holds
	// at most; beyond it the object is truncated and annotated
	// endpoints.kubernetes.io/over-capacity=truncated. Default 1,000, as in
	// Kubernetes.
	MaxEndpointsAddresses int
}

func (o EndpointsOptions) withDefaults() EndpointsOptions {
	if o.MaxEndpointsPerSlice <= 0 {
		o.MaxEndpointsPerSlice = 100
	}
	if o.MaxEndpointsAddresses <= 0 {
		o.MaxEndpointsAddresses = 1000
	}
	return o
}

// EndpointSliceController keeps the EndpointSlices of every Service with a
// selector: one endpoint per selected pod with an IP, grouped by the port
// set the pod resolves, at most MaxEndpointsPerSlice a slice, with as few
// slice writes as a change allows (see planSlices). It also writes the
// service's servicenet.ConditionEndpointsReady condition.
type EndpointSliceController struct {
	*Controller
	st       *store.Store
	services cache.SharedIndexInformer
	pods     cache.SharedIndexInformer
	nodes    cache.SharedIndexInformer
	w        *sliceWriter
}

// NewEndpointSliceController returns the controller, registered on the
// informers.
func NewEndpointSliceController(st *store.Store, inf *Informers, opts EndpointsOptions, qopts QueueOptions, log *slog.Logger) (*EndpointSliceController, error) {
	opts = opts.withDefaults()
	c := &EndpointSliceController{
		st: st, services: inf.For(store.MustResource("services")), pods: inf.For(store.MustResource("pods")),
		nodes: inf.For(store.MustResource("nodes")),
		w:     newSliceWriter(st, inf, servicenet.EndpointSliceManagedBy, opts.MaxEndpointsPerSlice),
	}
	c.Controller = NewController("endpointslice", c, qopts, log)
	if err := addServiceSelectorIndex(c.services); err != nil {
		return nil, err
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{c.services, serviceHandler(c.Enqueue)},
		{c.pods, podServiceHandler(c.services, c.Enqueue)},
		{c.w.slices, c.w.handler(c.Enqueue)},
		{c.nodes, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.nodeChanged(nil, obj) },
			UpdateFunc: c.nodeChanged,
			DeleteFunc: func(obj any) { c.nodeChanged(obj, nil) },
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("endpointslice controller: %w", err)
		}
	}
	return c, nil
}

// nodeChanged queues the services of the node's pods when its zone changes
// (old is nil when it appears, cur when it goes).
func (c *EndpointSliceController) nodeChanged(old, cur any) {
	zone := func(obj any) (string, string) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if n, ok := obj.(*corev1.Node); ok {
			return n.Name, n.Labels[corev1.LabelTopologyZone]
		}
		return "", ""
	}
	name, z1 := zone(old)
	n2, z2 := zone(cur)
	if z1 == z2 {
		return
	}
	if n2 != "" {
		name = n2
	}
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexNode, name) {
		for _, s := range servicesSelecting(c.services, p.Namespace, p.Labels) {
			c.Enqueue(s.Namespace + "/" + s.Name)
		}
	}
}

func (c *EndpointSliceController) zoneOf(node string) string {
	if node == "" {
		return ""
	}
	n, ok := GetCached[*corev1.Node](c.nodes, "", node)
	if !ok {
		return ""
	}
	return n.Labels[corev1.LabelTopologyZone]
}

// Reconcile brings one service's EndpointSlices and condition up to date.
func (c *EndpointSliceController) Reconcile(ctx context.Context, key string) (Result, error) {
	svc, existing, res, err := c.w.load(key)
	if svc == nil {
		return res, err
	}
	if !selectsPods(svc) {
		if err := c.w.apply(ctx, key, slicePlan{delete: existing}); err != nil {
			return Result{}, err
		}
		return Result{}, removeServiceCondition(ctx, c.st, svc, servicenet.ConditionEndpointsReady)
	}
	want, sum := podEndpoints(svc, selectedPods(c.pods, svc), c.zoneOf)
	if err := c.w.apply(ctx, key, planSlices(c.w.spec(svc), existing, want)); err != nil {
		return Result{}, err
	}
	return Result{}, setServiceCondition(ctx, c.st, svc, endpointsCondition(svc, sum))
}

// endpointsCondition decides the EndpointsReady condition. Its message
// counts selected pods but never ready ones, so that readiness flips of a
// service that keeps ready endpoints write nothing.
func endpointsCondition(svc *corev1.Service, sum endpointSummary) metav1.Condition {
	cond := metav1.Condition{Type: servicenet.ConditionEndpointsReady, Status: metav1.ConditionFalse}
	switch {
	case sum.selected == 0:
		cond.Reason = ReasonNoPodsSelected
		cond.Message = fmt.Sprintf("selector %s selects no pod in namespace %s", labels.Set(svc.Spec.Selector), svc.Namespace)
	case sum.ready == 0 && len(sum.unmatched) > 0:
		cond.Reason = ReasonNoMatchingPort
		cond.Message = strings.Join(sum.unmatched, "; ")
	case sum.ready == 0 && sum.selected == 1:
		cond.Reason = ReasonNoReadyEndpoints
		cond.Message = "the selected pod is not ready"
	case sum.ready == 0:
		cond.Reason = ReasonNoReadyEndpoints
		cond.Message = fmt.Sprintf("none of the %d selected pods is ready", sum.selected)
	default:
		cond.Status = metav1.ConditionTrue
		cond.Reason = ReasonEndpointsReady
		cond.Message = "the service has ready endpoints"
		if len(sum.unmatched) > 0 {
			cond.Message += "; " + strings.Join(sum.unmatched, "; ")
		}
	}
	return cond
}

// endpointControllers makes the EndpointSlice, Endpoints and mirroring
// controllers and returns their Run functions. Making them fails only when
// an informer has already stopped, which a manager's own never have: such a
// failure is logged and leaves the controllers out.
func endpointControllers(st *store.Store, inf *Informers, opts EndpointsOptions, qopts QueueOptions, log *slog.Logger) []func(ctx context.Context) {
	slices, err1 := NewEndpointSliceController(st, inf, opts, qopts, log)
	eps, err2 := NewEndpointsController(st, inf, opts, qopts, log)
	mirror, err3 := NewEndpointSliceMirroringController(st, inf, opts, qopts, log)
	if err := errors.Join(err1, err2, err3); err != nil {
		if log == nil {
			log = slog.Default()
		}
		log.Error("endpoint controllers not started", "err", err)
		return nil
	}
	return []func(ctx context.Context){slices.Run, eps.Run, mirror.Run}
}
