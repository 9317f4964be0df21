package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// maxMirroredPerSubset is how many addresses of one Endpoints subset are
// mirrored at most, as in Kubernetes.
const maxMirroredPerSubset = 1000

// EndpointSliceMirroringController gives a Service without selector whose
// Endpoints object comes from Git (label keelson.dev/source) EndpointSlices
// mirrored from it (managed by servicenet.EndpointSliceMirroringManagedBy),
// because the node proxy and cluster DNS read only EndpointSlices. Addresses
// are ready endpoints, notReadyAddresses not-ready ones; only IPv4 addresses
// are mirrored. The control plane's services are left alone.
type EndpointSliceMirroringController struct {
	*Controller
	services  cache.SharedIndexInformer
	endpoints cache.SharedIndexInformer
	w         *sliceWriter
}

// NewEndpointSliceMirroringController returns the controller, registered on
// the informers.
func NewEndpointSliceMirroringController(st *store.Store, inf *Informers, opts EndpointsOptions, qopts QueueOptions, log *slog.Logger) (*EndpointSliceMirroringController, error) {
	opts = opts.withDefaults()
	c := &EndpointSliceMirroringController{
		services: inf.For(store.MustResource("services")), endpoints: inf.For(store.MustResource("endpoints")),
		w: newSliceWriter(st, inf, servicenet.EndpointSliceMirroringManagedBy, opts.MaxEndpointsPerSlice),
	}
	c.Controller = NewController("endpointslice-mirroring", c, qopts, log)
	for inf, h := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		c.services:  serviceHandler(c.Enqueue),
		c.endpoints: c.Handler(SelfKeys),
		c.w.slices:  c.w.handler(c.Enqueue),
	} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("endpointslice mirroring controller: %w", err)
		}
	}
	return c, nil
}

// Reconcile brings the mirrored slices of one service up to date.
func (c *EndpointSliceMirroringController) Reconcile(ctx context.Context, key string) (Result, error) {
	svc, existing, res, err := c.w.load(key)
	if svc == nil {
		return res, err
	}
	ep, ok := GetCached[*corev1.Endpoints](c.endpoints, svc.Namespace, svc.Name)
	if !ok || !mirrored(svc, ep) {
		return Result{}, c.w.apply(ctx, key, slicePlan{delete: existing})
	}
	return Result{}, c.w.apply(ctx, key, planSlices(c.w.spec(svc), existing, mirroredEndpoints(ep)))
}

// mirrored reports whether ep is to be mirrored for svc: the service has no
// selector and the Endpoints come from Git, not marked to skip mirroring.
func mirrored(svc *corev1.Service, ep *corev1.Endpoints) bool {
	_, git := ep.Labels[keelsonv1alpha1.LabelSource]
	return len(svc.Spec.Selector) == 0 && git && ep.Labels[discoveryv1.LabelSkipMirror] != "true"
}

// mirroredEndpoints is the endpoint set of an Endpoints object.
func mirroredEndpoints(ep *corev1.Endpoints) endpointSet {
	set := endpointSet{}
	for _, ss := range ep.Subsets {
		var ports []discoveryv1.EndpointPort
		for _, p := range ss.Ports {
			ports = append(ports, discoveryv1.EndpointPort{
				Name: ptr.To(p.Name), Protocol: ptr.To(protocolOr(p.Protocol)), Port: ptr.To(p.Port), AppProtocol: p.AppProtocol,
			})
		}
		n := 0
		for _, group := range []struct {
			addrs []corev1.EndpointAddress
			ready bool
		}{{ss.Addresses, true}, {ss.NotReadyAddresses, false}} {
			for _, a := range group.addrs {
				ip, err := netip.ParseAddr(a.IP)
				if err != nil || !ip.Is4() || n >= maxMirroredPerSubset {
					continue
				}
				n++
				set.add(ports, mirroredEndpoint(a, ip.String(), group.ready))
			}
		}
	}
	return set
}

func mirroredEndpoint(a corev1.EndpointAddress, ip string, ready bool) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{
		Addresses: []string{ip},
		Conditions: discoveryv1.EndpointConditions{
			Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false),
		},
		NodeName: a.NodeName,
	}
	if a.Hostname != "" {
		e.Hostname = ptr.To(a.Hostname)
	}
	if a.TargetRef != nil {
		r := *a.TargetRef
		r.ResourceVersion = ""
		e.TargetRef = &r
	}
	return e
}
