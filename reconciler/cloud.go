package reconciler

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
)

// defaultCloudResync is how often, by default, the cloud node and route
// controllers ask the provider again (Kubernetes' route controller lists
// routes every 10s).
const defaultCloudResync = 10 * time.Second

// cloudControllers builds the term's cloud provider and its controllers:
// the service load balancer controller always (it tells LoadBalancer
// services when nothing gives them an address), the cloud node controller
// when the provider has Instances, the route controller when it has Routes.
func cloudControllers(st *store.Store, inf *Informers, rec *Recorder, opts Options, log *slog.Logger) []func(context.Context) {
	p := opts.Cloud
	if p == nil {
		p = buildCloud(opts, inf.For(store.MustResource("services")), log)
	}
	resync := opts.CloudResync
	if resync <= 0 {
		resync = defaultCloudResync
	}
	runs := []func(context.Context){newCloudLBController(st, inf, rec, p, opts.Queue, log).Run}
	if inst, ok := p.Instances(); ok {
		runs = append(runs, newCloudNodeController(st, inf, rec, inst, resync, opts.Queue, log).Run)
	}
	if routes, ok := p.Routes(); ok {
		cidr, _ := netip.ParsePrefix(opts.NodeLifecycle.withDefaults().ClusterCIDR) // "-": none, every route listed is keelson's
		runs = append(runs, newCloudRouteController(inf, rec, routes, cidr, resync, opts.Queue, log).Run)
	}
	return runs
}

// buildCloud builds the provider named by opts.CloudProvider for one term,
// whose Services are the term's cache. A provider that cannot be built
// fails every load balancer with the reason, which the services' condition
// then shows: keelson server checks its flags at start, so this is a
// program's mistake.
func buildCloud(opts Options, services cache.SharedIndexInformer, log *slog.Logger) cloud.Interface {
	name := opts.CloudProvider
	if name == "" {
		name = cloud.NoneName
	}
	cfg := opts.CloudConfig
	if cfg.Services == nil {
		cfg.Services = func() []*corev1.Service { return cachedList[*corev1.Service](services) }
	}
	if cfg.Logger == nil {
		cfg.Logger = log.With("cloud", name)
	}
	p, err := cloud.New(name, cfg)
	if err != nil {
		log.Error("cloud provider not built", "provider", name, "err", err)
		return brokenCloud{name: name, err: err}
	}
	return p
}

// cachedList returns every cached object of inf, typed.
func cachedList[T runtime.Object](inf cache.SharedIndexInformer) []T {
	items := inf.GetStore().List()
	out := make([]T, 0, len(items))
	for _, it := range items {
		if o, ok := it.(T); ok {
			out = append(out, o)
		}
	}
	return out
}

// brokenCloud is a provider that could not be built: its load balancers
// fail with the reason.
type brokenCloud struct {
	name string
	err  error
}

func (b brokenCloud) Name() string                             { return b.name }
func (b brokenCloud) LoadBalancer() (cloud.LoadBalancer, bool) { return b, true }
func (b brokenCloud) Instances() (cloud.Instances, bool)       { return nil, false }
func (b brokenCloud) Routes() (cloud.Routes, bool)             { return nil, false }

func (b brokenCloud) GetLoadBalancer(context.Context, *corev1.Service) (*corev1.LoadBalancerStatus, bool, error) {
	return nil, false, b.err
}

func (b brokenCloud) EnsureLoadBalancer(context.Context, *corev1.Service, []*corev1.Node) (*corev1.LoadBalancerStatus, error) {
	return nil, b.err
}

func (b brokenCloud) UpdateLoadBalancer(context.Context, *corev1.Service, []*corev1.Node) error {
	return b.err
}

func (b brokenCloud) EnsureLoadBalancerDeleted(context.Context, *corev1.Service) error { return b.err }
