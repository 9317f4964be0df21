package agent

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/agent/proxy"
	"github.com/keelson/keelson/agent/route"
)

// Reasons of the node's NetworkUnavailable condition, which says whether the
// service rules and the routes to other nodes' pods are in place.
const (
	reasonNetworkReady = "KeelsonNetworkReady"
	reasonProxyFailed  = "NodeProxyFailed"
	reasonRoutesFailed = "PodRoutesFailed"
)

// netHealth is what the node proxy and the pod routes last said of
// themselves; the node's status reports it.
type netHealth struct {
	mu     sync.Mutex
	proxy  error
	routes error
	poke   chan struct{} // a status post is due
}

func newNetHealth() *netHealth { return &netHealth{poke: make(chan struct{}, 1)} }

func (h *netHealth) set(which *error, err error) {
	h.mu.Lock()
	changed := (*which == nil) != (err == nil) || (err != nil && (*which).Error() != err.Error())
	*which = err
	h.mu.Unlock()
	if changed {
		select {
		case h.poke <- struct{}{}:
		default:
		}
	}
}

// condition is the NetworkUnavailable condition: True, with the reason, while
// the proxy or the routes fail; pods keep running either way.
func (h *netHealth) condition() corev1.NodeCondition {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.proxy != nil:
		return corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: reasonProxyFailed,
			Message: "services do not work on this node: " + h.proxy.Error()}
	case h.routes != nil:
		return corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: reasonRoutesFailed,
			Message: "pods of other nodes are not reachable from this node: " + h.routes.Error()}
	}
	return corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: reasonNetworkReady,
		Message: "service rules and routes to other nodes' pods are in place"}
}

// startNetwork runs the node proxy and the pod routes beside the pods, until
// ctx ends, in goroutines of wg. Both leave their rules in place when they
// stop, so that pods keep working while the agent restarts.
func (a *Agent) startNetwork(ctx context.Context, wg *sync.WaitGroup) error {
	if !a.cfg.ServiceProxy {
		return nil
	}
	p, err := proxy.New(proxy.Config{
		Services:       a.cluster.Core().V1().Services().Informer(),
		EndpointSlices: a.cluster.Discovery().V1().EndpointSlices().Informer(),
		Nodes:          a.cluster.Core().V1().Nodes().Informer(),
		NodeName:       a.cfg.NodeName,
		Masquerade:     a.cfg.Masquerade,
		Table:          a.cfg.ProxyTable,
		NetNS:          a.cfg.NetNS,
		OnHealth:       func(err error) { a.net.set(&a.net.proxy, err) },
		Logger:         a.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("node proxy: %w", err)
	}
	r, err := route.New(route.Config{
		Nodes:          a.cluster.Core().V1().Nodes().Informer(),
		Services:       a.cluster.Core().V1().Services().Informer(),
		EndpointSlices: a.cluster.Discovery().V1().EndpointSlices().Informer(),
		NodeName:       a.cfg.NodeName,
		NetNS:          a.cfg.NetNS,
		OnHealth:       func(err error) { a.net.set(&a.net.routes, err) },
		Logger:         a.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("pod routes: %w", err)
	}
	wg.Go(func() {
		if err := p.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("node proxy stopped", "err", err)
		}
	})
	wg.Go(func() {
		if err := r.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("pod routes stopped", "err", err)
		}
	})
	return nil
}
