package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// ServiceOptions tunes cluster IPs, node ports and the control plane's own
// services.
type ServiceOptions struct {
	// CIDR is the service CIDR cluster IPs come from. Default
	// servicenet.DefaultServiceCIDR.
	CIDR string
	// NodePortRange is where node ports come from. Default
	// servicenet.DefaultNodePortRange.
	NodePortRange string
	// Address is the control plane's address that pods reach (the advertise
	// address); APIPort and DNSPort its API and cluster DNS ports. An empty
	// Address or a 0 port publishes no endpoint for that service.
	Address          string
	APIPort, DNSPort int32
}

// serviceConfig is ServiceOptions checked and parsed.
type serviceConfig struct {
	cidr             servicenet.CIDR
	ports            servicenet.PortRange
	addr             netip.Addr // invalid when unset
	apiPort, dnsPort int32
}

// parse checks the options, with the defaults filled in.
func (o ServiceOptions) parse() (serviceConfig, error) {
	if o.CIDR == "" {
		o.CIDR = servicenet.DefaultServiceCIDR
	}
	if o.NodePortRange == "" {
		o.NodePortRange = servicenet.DefaultNodePortRange
	}
	var cfg serviceConfig
	var err error
	if cfg.cidr, err = servicenet.ParseCIDR(o.CIDR); err != nil {
		return serviceConfig{}, err
	}
	if cfg.ports, err = servicenet.ParsePortRange(o.NodePortRange); err != nil {
		return serviceConfig{}, err
	}
	if o.Address != "" {
		if cfg.addr, err = netip.ParseAddr(o.Address); err != nil || !cfg.addr.Is4() {
			return serviceConfig{}, fmt.Errorf("control plane address %q: want an IPv4 address that pods reach", o.Address)
		}
	}
	for _, p := range []struct {
		what string
		port int32
	}{{"API port", o.APIPort}, {"DNS port", o.DNSPort}} {
		if p.port < 0 || p.port > 65535 {
			return serviceConfig{}, fmt.Errorf("control plane %s %d: want 0 (none) or 1-65535", p.what, p.port)
		}
	}
	cfg.apiPort, cfg.dnsPort = o.APIPort, o.DNSPort
	return cfg, nil
}

// Reasons of servicenet.ConditionIPAllocated.
const (
	// ReasonAllocated: the service holds its cluster IP and node ports.
	ReasonAllocated = "Allocated"
	// ReasonClusterIPTaken: the clusterIP written in Git is another
	// service's.
	ReasonClusterIPTaken = "ClusterIPTaken"
	// ReasonNotInServiceCIDR: the clusterIP written in Git is not an
	// address of the service CIDR.
	ReasonNotInServiceCIDR = "NotInServiceCIDR"
	// ReasonServiceCIDRFull: no free address is left.
	ReasonServiceCIDRFull = "ServiceCIDRFull"
	// ReasonNodePortTaken: a nodePort written in Git is another service's.
	ReasonNodePortTaken = "NodePortTaken"
	// ReasonNotInNodePortRange: a nodePort written in Git is outside the
	// node port range.
	ReasonNotInNodePortRange = "NotInNodePortRange"
	// ReasonNodePortRangeFull: no free node port is left.
	ReasonNodePortRangeFull = "NodePortRangeFull"
)

// Index names of the service IP controller.
const (
	// indexClusterIP keys Services by spec.clusterIP.
	indexClusterIP = "clusterIP"
	// indexIPParent keys IPAddresses by the "namespace/name" of the
	// Service in their parentRef.
	indexIPParent = "ipParent"
)

// ServiceIPController gives Services their cluster IP and node ports, and
// takes them back. A cluster IP is reserved by an IPAddress object created in
// the same transaction as the Service's compare-and-swap update, so an
// address is never given twice, whatever crashes or races; node ports are
// kept in memory (see nodePorts). A repair queue deletes the reservations
// keelson made whose Service is gone or holds another address.
type ServiceIPController struct {
	*Controller
	repair    *Controller
	st        *store.Store
	services  cache.SharedIndexInformer
	addresses cache.SharedIndexInformer
	rec       *Recorder
	cfg       serviceConfig
	ips       *ipAllocator
	ports     *nodePorts
	log       *slog.Logger
	// reconciled, when set, is told each key a queue ("service" or
	// "repair") finished with, error or not: tests wait on it to know a
	// new leader has looked at everything.
	reconciled func(queue, key string)
	// waiting holds the keys of services whose allocation failed: they are
	// looked at again whenever an address or a node port is given back.
	waitMu  sync.Mutex
	waiting map[string]bool
}

// newServiceIPController returns the controller, registered on the
// informers. cfg comes from ServiceOptions.parse.
func newServiceIPController(st *store.Store, inf *Informers, rec *Recorder, cfg serviceConfig, queue QueueOptions, log *slog.Logger) *ServiceIPController {
	c := &ServiceIPController{st: st, rec: rec, cfg: cfg, log: log, waiting: map[string]bool{},
		services: inf.For(store.MustResource("services")), addresses: inf.For(store.MustResource("ipaddresses.networking.k8s.io")),
		ports: newNodePorts(cfg.ports)}
	c.ips = newIPAllocator(cfg.cidr, c.addressUsed)
	c.Controller = NewController("service-ip", ReconcileFunc(func(ctx context.Context, key string) (Result, error) {
		defer c.done("service", key)
		return c.reconcileService(ctx, key)
	}), queue, log)
	c.repair = NewController("service-ip-repair", ReconcileFunc(func(ctx context.Context, key string) (Result, error) {
		defer c.done("repair", key)
		return c.repairAddress(ctx, key)
	}), queue, log)
	if err := c.services.AddIndexers(cache.Indexers{indexClusterIP: serviceClusterIPIndex}); err != nil {
		log.Error("index services by cluster IP", "err", err)
	}
	if err := c.addresses.AddIndexers(cache.Indexers{indexIPParent: ipParentIndex}); err != nil {
		log.Error("index IP addresses by service", "err", err)
	}
	c.services.AddEventHandler(c.Handler(SelfKeys))
	c.addresses.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.addressSeen(obj) },
		UpdateFunc: func(_, cur any) { c.addressSeen(cur) },
		DeleteFunc: c.addressGone,
	})
	return c
}

func serviceClusterIPIndex(obj any) ([]string, error) {
	s, ok := obj.(*corev1.Service)
	if !ok || s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil, nil
	}
	return []string{s.Spec.ClusterIP}, nil
}

func ipParentIndex(obj any) ([]string, error) {
	if key := parentService(obj); key != "" {
		return []string{key}, nil
	}
	return nil, nil
}

// parentService is the "namespace/name" of the Service an IPAddress is
// reserved for, or "" when its parent is something else.
func parentService(obj any) string {
	ip, ok := obj.(*networkingv1.IPAddress)
	if !ok || ip.Spec.ParentRef == nil {
		return ""
	}
	ref := ip.Spec.ParentRef
	if ref.Group != "" || ref.Resource != "services" || ref.Namespace == "" || ref.Name == "" {
		return ""
	}
	return ref.Namespace + "/" + ref.Name
}

// addressUsed reports whether the informers know of a use of a: a
// reservation, or a Service whose spec holds it (one from Git whose
// reservation is not made yet).
func (c *ServiceIPController) addressUsed(a netip.Addr) bool {
	s := a.String()
	if _, ok, _ := c.addresses.GetIndexer().GetByKey(s); ok {
		return true
	}
	holders, _ := c.services.GetIndexer().ByIndex(indexClusterIP, s)
	return len(holders) > 0
}

func (c *ServiceIPController) addressSeen(obj any) {
	ip, ok := obj.(*networkingv1.IPAddress)
	if !ok {
		return
	}
	if a, err := netip.ParseAddr(ip.Name); err == nil {
		c.ips.seen(a)
	}
	c.repair.Enqueue(ip.Name)
	if key := parentService(ip); key != "" {
		c.Enqueue(key)
	}
}

// addressGone looks again at the reservation's service, at services whose
// spec holds the address (one from Git may have waited for it), and at
// every service waiting for a free address.
func (c *ServiceIPController) addressGone(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	ip, ok := obj.(*networkingv1.IPAddress)
	if !ok {
		return
	}
	if key := parentService(ip); key != "" {
		c.Enqueue(key)
	}
	for _, s := range ByIndex[*corev1.Service](c.services, indexClusterIP, ip.Name) {
		c.Enqueue(s.Namespace + "/" + s.Name)
	}
	c.wakeWaiting()
}

// Run rebuilds the node port map from the informer cache (Run is called once
// the informers have synced), queues every reservation for repair, and runs
// both queues until ctx ends.
func (c *ServiceIPController) Run(ctx context.Context) {
	var svcs []*corev1.Service
	for _, o := range c.services.GetStore().List() {
		if s, ok := o.(*corev1.Service); ok {
			svcs = append(svcs, s)
		}
	}
	c.ports.rebuild(svcs)
	for _, name := range c.addresses.GetStore().ListKeys() {
		c.repair.Enqueue(name)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.repair.Run(ctx)
	}()
	c.Controller.Run(ctx)
	wg.Wait()
}

func (c *ServiceIPController) done(queue, key string) {
	if c.reconciled != nil {
		c.reconciled(queue, key)
	}
}

// reconcileService allocates or releases one service's cluster IP and node
// ports. A conflict with another writer of the service (gitsync, the
// endpoints controller's condition) is retried at once on a fresh read.
func (c *ServiceIPController) reconcileService(ctx context.Context, key string) (Result, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return Result{}, Terminal(fmt.Errorf("service key %q: %w", key, err))
	}
	svc, ok := GetCached[*corev1.Service](c.services, ns, name)
	if !ok {
		return Result{}, c.released(ctx, ns, name)
	}
	for attempt := 0; ; attempt++ {
		err := c.sync(ctx, svc)
		if attempt == 3 || !(errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists)) {
			return Result{}, err
		}
		fresh := &corev1.Service{}
		if err := c.st.Get(ctx, ns, name, fresh); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return Result{}, c.released(ctx, ns, name)
			}
			return Result{}, fmt.Errorf("service %s: %w", key, err)
		}
		svc = fresh
	}
}

// released gives back what a deleted service held: its reservations made
// by keelson and its node ports. The store, not the cache, says whether the
// service is gone: another allocator may have just made it a reservation
// this cache has seen before the service.
func (c *ServiceIPController) released(ctx context.Context, ns, name string) error {
	key := ns + "/" + name
	if err := c.st.Get(ctx, ns, name, &corev1.Service{}); !errors.Is(err, store.ErrNotFound) {
		if err != nil {
			return fmt.Errorf("service %s: %w", key, err)
		}
		return nil // it exists after all: its event will come
	}
	for _, ip := range ByIndex[*networkingv1.IPAddress](c.addresses, indexIPParent, key) {
		if err := c.deleteAddress(ctx, ip); err != nil {
			return fmt.Errorf("release %s of deleted service %s: %w", ip.Name, key, err)
		}
	}
	c.setWaiting(key, false)
	if c.ports.releaseAll(key) {
		c.wakeWaiting()
	}
	return nil
}

// deleteAddress deletes a reservation keelson made, if it is still the one
// seen (uid and resourceVersion). One already gone or changed meanwhile is
// not an error: its event brings it back to the repair queue.
func (c *ServiceIPController) deleteAddress(ctx context.Context, ip *networkingv1.IPAddress) error {
	if !managedByKeelson(ip) {
		return nil
	}
	err := c.st.Txn(ctx, deleteAddressOp(ip))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

func deleteAddressOp(ip *networkingv1.IPAddress) store.Op {
	uid, rv := ip.UID, ip.ResourceVersion
	return store.DeleteOp(store.MustResource("ipaddresses.networking.k8s.io"), "", ip.Name,
		&metav1.Preconditions{UID: &uid, ResourceVersion: &rv})
}

func managedByKeelson(ip *networkingv1.IPAddress) bool {
	return ip.Labels[servicenet.LabelIPAddressManagedBy] == servicenet.IPAddressManagedBy
}

// setWaiting records whether key's last allocation failed.
func (c *ServiceIPController) setWaiting(key string, failed bool) {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	if failed {
		c.waiting[key] = true
	} else {
		delete(c.waiting, key)
	}
}

// wakeWaiting queues every service whose allocation failed: something was
// given back.
func (c *ServiceIPController) wakeWaiting() {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	for key := range c.waiting {
		c.Enqueue(key)
	}
}
