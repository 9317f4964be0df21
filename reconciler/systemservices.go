package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// controlPlaneKey is the one key of the ControlPlaneServicesController: its
// few objects are kept together.
const controlPlaneKey = "control-plane"

// ControlPlaneServicesController makes and keeps the control plane's own
// objects, outside Git: the kube-system namespace, the local-path
// StorageClass and the keelson IngressClass, the kubernetes service
// (the API, on the service CIDR's first address) and kube-dns (cluster DNS,
// on its tenth), their EndpointSlices and Endpoints, and the ServiceCIDR
// object. A deleted or changed one is put back.
//
// The endpoints are the servers whose Lease is live (AnnounceServer), each
// serving the API and cluster DNS on the leader's ports; the leader's own
// advertise address when none is.
type ControlPlaneServicesController struct {
	*Controller
	st        *store.Store
	cfg       serviceConfig
	nss       cache.SharedIndexInformer
	services  cache.SharedIndexInformer
	endpoints cache.SharedIndexInformer
	slices    cache.SharedIndexInformer
	cidrs     cache.SharedIndexInformer
	classes   cache.SharedIndexInformer
	ingresses cache.SharedIndexInformer
	leases    cache.SharedIndexInformer
}

// newControlPlaneServicesController returns the controller, registered on
// the informers. cfg comes from ServiceOptions.parse.
func newControlPlaneServicesController(st *store.Store, inf *Informers, cfg serviceConfig, queue QueueOptions, log *slog.Logger) *ControlPlaneServicesController {
	c := &ControlPlaneServicesController{st: st, cfg: cfg,
		nss: inf.For(store.MustResource("namespaces")), services: inf.For(store.MustResource("services")),
		endpoints: inf.For(store.MustResource("endpoints")), slices: inf.For(store.MustResource("endpointslices.discovery.k8s.io")),
		cidrs: inf.For(store.MustResource("servicecidrs.networking.k8s.io")), classes: inf.For(store.MustResource("storageclasses.storage.k8s.io")),
		ingresses: inf.For(store.MustResource("ingressclasses.networking.k8s.io")),
		leases:    inf.For(store.MustResource("leases.coordination.k8s.io"))}
	c.Controller = NewController("control-plane-services", c, queue, log)
	h := c.Handler(controlPlaneKeys)
	for _, i := range []cache.SharedIndexInformer{c.nss, c.services, c.endpoints, c.slices, c.cidrs, c.classes, c.ingresses, c.leases} {
		i.AddEventHandler(h)
	}
	return c
}

// controlPlaneKeys enqueues the controller's key for its own objects.
func controlPlaneKeys(obj any) []string {
	m, err := metaOf(obj)
	if err != nil {
		return nil
	}
	mine := false
	switch obj.(type) {
	case *corev1.Namespace:
		mine = m.GetName() == servicenet.DNSServiceNamespace
	case *networkingv1.ServiceCIDR:
		mine = m.GetName() == servicenet.ServiceCIDRName
	case *networkingv1.IngressClass:
		mine = m.GetName() == ingressclass.Name
	case *coordinationv1.Lease:
		mine = m.GetNamespace() == servicenet.DNSServiceNamespace && m.GetLabels()[LabelServer] == "true"
	case *corev1.Service, *corev1.Endpoints, *discoveryv1.EndpointSlice:
		key := m.GetNamespace() + "/" + m.GetName()
		mine = key == servicenet.APIServiceNamespace+"/"+servicenet.APIServiceName ||
			key == servicenet.DNSServiceNamespace+"/"+servicenet.DNSServiceName
	}
	if !mine {
		return nil
	}
	return []string{controlPlaneKey}
}

// Run makes the objects once at start, then keeps them until ctx ends.
func (c *ControlPlaneServicesController) Run(ctx context.Context) {
	c.Enqueue(controlPlaneKey)
	c.Controller.Run(ctx)
}

// Reconcile makes every object the control plane owns as it should be.
func (c *ControlPlaneServicesController) Reconcile(ctx context.Context, _ string) (Result, error) {
	ready, err := c.keepNamespace(ctx)
	if err != nil || !ready {
		return Result{RequeueAfter: time.Second}, err
	}
	var leases []*coordinationv1.Lease
	for _, o := range c.leases.GetIndexer().List() {
		if l, ok := o.(*coordinationv1.Lease); ok && l.Namespace == servicenet.DNSServiceNamespace {
			leases = append(leases, l)
		}
	}
	servers, expiry := liveServers(leases, c.cfg.apiPort, c.cfg.dnsPort, time.Now())
	var errs []error
	for _, s := range systemServices(c.cfg, servers) {
		errs = append(errs, c.keepService(ctx, s.svc),
			keep(ctx, c.st, c.slices, s.slice, func(out, want *discoveryv1.EndpointSlice) {
				out.AddressType, out.Endpoints, out.Ports = want.AddressType, want.Endpoints, want.Ports
			}),
			keep(ctx, c.st, c.endpoints, s.ep, func(out, want *corev1.Endpoints) { out.Subsets = want.Subsets }))
	}
	errs = append(errs, c.keepStorageClass(ctx), c.keepIngressClass(ctx))
	errs = append(errs, keep(ctx, c.st, c.cidrs, serviceCIDRObject(c.cfg), func(out, want *networkingv1.ServiceCIDR) {
		out.Spec.CIDRs = want.Spec.CIDRs
		setServiceCIDRReady(out, c.cfg)
	}))
	var res Result
	if !expiry.IsZero() {
		// A server that stops renewing leaves no event: look again when
		// the first lease runs out.
		res.RequeueAfter = time.Until(expiry) + 100*time.Millisecond
	}
	return res, errors.Join(errs...)
}

// keepStorageClass makes the local-path StorageClass when absent: the
// default class, whose claims the node agents provision on the node of
// their first pod (WaitForFirstConsumer), deleted with their claim. Like
// kube-system it carries no control-plane label: a repository may declare
// its own local-path class, and gitsync may adopt it.
func (c *ControlPlaneServicesController) keepStorageClass(ctx context.Context) error {
	if _, ok := GetCached[*storagev1.StorageClass](c.classes, "", keelsonv1alpha1.LocalPathClass); ok {
		return nil
	}
	wffc, del := storagev1.VolumeBindingWaitForFirstConsumer, corev1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: keelsonv1alpha1.LocalPathClass, Annotations: map[string]string{annDefaultClass: "true"}},
		Provisioner:       keelsonv1alpha1.LocalPathProvisioner,
		ReclaimPolicy:     &del,
		VolumeBindingMode: &wffc,
	}
	if err := c.st.Create(ctx, sc); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("create storage class %s: %w", sc.Name, err)
	}
	return nil
}

// keepIngressClass makes keelson's IngressClass when absent: the default
// class, served by the ingress proxy of every agent. Like the local-path
// class it carries no control-plane label, and a repository may declare
// its own (gitsync adopts it); a deleted one comes back.
func (c *ControlPlaneServicesController) keepIngressClass(ctx context.Context) error {
	if _, ok := GetCached[*networkingv1.IngressClass](c.ingresses, "", ingressclass.Name); ok {
		return nil
	}
	ic := ingressclass.Object()
	if err := c.st.Create(ctx, ic); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("create ingress class %s: %w", ic.Name, err)
	}
	return nil
}

// keepNamespace makes kube-system when absent; false while it is being
// deleted (what is made in it now would be deleted with it). It carries no
// control-plane label: repositories commonly declare kube-system (to label
// it, or to put their own things there), and gitsync may adopt it.
func (c *ControlPlaneServicesController) keepNamespace(ctx context.Context) (bool, error) {
	ns, ok := GetCached[*corev1.Namespace](c.nss, "", servicenet.DNSServiceNamespace)
	if ok {
		return ns.DeletionTimestamp == nil, nil
	}
	ns = &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: servicenet.DNSServiceNamespace},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	if err := c.st.Create(ctx, ns); err != nil && !errors.Is(err, store.ErrExists) {
		return false, fmt.Errorf("create namespace %s: %w", ns.Name, err)
	}
	return true, nil
}

// keepService makes one of the control plane's services, or puts back
// what it owns of it. A cluster IP cannot change in place (the node proxies
// and the reservation hold it): a service on another address (the service
// CIDR was changed) is deleted and made again.
func (c *ControlPlaneServicesController) keepService(ctx context.Context, want *corev1.Service) error {
	cur, ok := GetCached[*corev1.Service](c.services, want.Namespace, want.Name)
	if ok && cur.Spec.ClusterIP != "" && cur.Spec.ClusterIP != want.Spec.ClusterIP {
		uid := cur.UID
		err := c.st.Delete(ctx, store.MustResource("services"), cur.Namespace, cur.Name, &metav1.Preconditions{UID: &uid})
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("service %s/%s on %s, want %s: delete: %w", cur.Namespace, cur.Name, cur.Spec.ClusterIP, want.Spec.ClusterIP, err)
		}
		return nil // its deletion brings it back on the right address
	}
	return keep(ctx, c.st, c.services, want, func(out, want *corev1.Service) {
		out.Spec.Type, out.Spec.Ports, out.Spec.Selector = want.Spec.Type, want.Spec.Ports, nil
		out.Spec.ClusterIP, out.Spec.SessionAffinity = want.Spec.ClusterIP, want.Spec.SessionAffinity
		if out.Spec.InternalTrafficPolicy == nil {
			out.Spec.InternalTrafficPolicy = want.Spec.InternalTrafficPolicy
		}
		fillClusterIPFields(&out.Spec)
	})
}

// keep creates want when the cache has no object of its name, else writes
// the cached one, compare-and-swap, with want's labels and what set copies
// from want, when that changes it. Conflicts are returned: the controller
// retries on a fresher cache.
func keep[T store.Object](ctx context.Context, st *store.Store, inf cache.SharedIndexInformer, want T, set func(out, want T)) error {
	cur, ok := GetCached[T](inf, want.GetNamespace(), want.GetName())
	if !ok {
		err := st.Create(ctx, want.DeepCopyObject().(T))
		if err != nil && !errors.Is(err, store.ErrExists) { // one the cache has not seen yet: its event comes
			return fmt.Errorf("create %T %s: %w", want, joinName(want.GetNamespace(), want.GetName()), err)
		}
		return nil
	}
	out := cur.DeepCopyObject().(T)
	out.SetLabels(withLabels(cur.GetLabels(), want.GetLabels()))
	set(out, want)
	if equality.Semantic.DeepEqual(cur, out) {
		return nil
	}
	if err := st.Update(ctx, out); err != nil {
		return fmt.Errorf("update %T %s: %w", want, joinName(want.GetNamespace(), want.GetName()), err)
	}
	return nil
}
