package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// allocFailure is why a service lacks its address or a node port: the
// reason and message of its IPAllocated condition.
type allocFailure struct{ reason, message string }

// svcPlan is what one reconcile of a service writes, in one transaction.
type svcPlan struct {
	key string
	in  *corev1.Service
	// out is in with the allocated fields and the condition as they should be.
	out *corev1.Service
	// create is a reservation to make; touch one the service takes back
	// (rewritten unchanged, so that a repair deleting it at the same moment
	// fails its precondition); release those it no longer holds.
	create, touch *networkingv1.IPAddress
	release       []*networkingv1.IPAddress
	// picked is an address chosen here, forgotten by the allocator when the
	// write fails.
	picked netip.Addr
	// ports are the node ports the service holds once written.
	ports       map[int32]bool
	allocated   []string
	failures    []allocFailure
	condChanged bool
}

func (p *svcPlan) fail(reason, format string, args ...any) {
	p.failures = append(p.failures, allocFailure{reason, fmt.Sprintf(format, args...)})
}

// ops are the writes of the plan. The service is written, compare-and-swap,
// whenever a reservation is made, even when nothing of it changed: the
// reservation lands only if the service still is as it was read.
func (p *svcPlan) ops() []store.Op {
	var ops []store.Op
	if p.create != nil || p.touch != nil || !equality.Semantic.DeepEqual(p.in, p.out) {
		ops = append(ops, store.UpdateOp(p.out))
	}
	if p.create != nil {
		ops = append(ops, store.CreateOp(p.create))
	}
	if p.touch != nil {
		ops = append(ops, store.UpdateOp(p.touch.DeepCopy()))
	}
	for _, ip := range p.release {
		ops = append(ops, deleteAddressOp(ip))
	}
	return ops
}

// sync computes and writes one service's allocation.
func (c *ServiceIPController) sync(ctx context.Context, svc *corev1.Service) error {
	key := svc.Namespace + "/" + svc.Name
	p := &svcPlan{key: key, in: svc, out: svc.DeepCopy(), ports: map[int32]bool{}}
	if err := c.planClusterIP(ctx, p); err != nil {
		return err
	}
	c.planNodePorts(p)
	setAllocatedCondition(p)
	if ops := p.ops(); len(ops) > 0 {
		if err := c.st.Txn(ctx, ops...); err != nil {
			// An address refused as existing is in use: it stays pending
			// until the informer shows it.
			if p.picked.IsValid() && !errors.Is(err, store.ErrExists) {
				c.ips.failed(p.picked)
			}
			return fmt.Errorf("service %s: write allocation: %w", key, err)
		}
	}
	if c.ports.keepOnly(key, p.ports) {
		c.wakeWaiting()
	}
	c.setWaiting(key, len(p.failures) > 0)
	if p.condChanged && len(p.failures) > 0 {
		f := p.failures[0]
		c.rec.Eventf(p.out, corev1.EventTypeWarning, f.reason, "%s", strings.Join(failureMessages(p.failures), "; "))
	}
	return nil
}

// planClusterIP decides the service's cluster IP: none for ExternalName and
// headless services, the one written in Git when it is free, else a new one;
// and which of its reservations to give back.
func (c *ServiceIPController) planClusterIP(ctx context.Context, p *svcPlan) error {
	spec := &p.out.Spec
	if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	held := ByIndex[*networkingv1.IPAddress](c.addresses, indexIPParent, p.key)
	switch {
	case spec.Type == corev1.ServiceTypeExternalName:
		// The fields keelson filled go with the address, as kube-apiserver
		// drops them when a service becomes ExternalName.
		spec.ClusterIP, spec.ClusterIPs, spec.IPFamilies, spec.IPFamilyPolicy = "", nil, nil, nil
		p.allocated = append(p.allocated, "ExternalName: no cluster IP")
	case spec.ClusterIP == corev1.ClusterIPNone:
		p.allocated = append(p.allocated, "headless: no cluster IP")
	case spec.ClusterIP == "":
		c.planNewAddress(p, held)
	default:
		if err := c.planGivenAddress(ctx, p); err != nil {
			return err
		}
	}
	for _, ip := range held {
		if ip.Name != spec.ClusterIP && managedByKeelson(ip) {
			p.release = append(p.release, ip)
		}
	}
	return nil
}

// planNewAddress gives a service without a cluster IP the reservation it
// still has (its spec lost the address), else a free address.
func (c *ServiceIPController) planNewAddress(p *svcPlan, held []*networkingv1.IPAddress) {
	spec := &p.out.Spec
	for _, ip := range held {
		if a, err := netip.ParseAddr(ip.Name); err == nil && managedByKeelson(ip) && c.cfg.cidr.Contains(a) {
			spec.ClusterIP, p.touch = ip.Name, ip
			break
		}
	}
	if p.touch == nil {
		addr, ok := c.ips.pick()
		if !ok {
			p.fail(ReasonServiceCIDRFull, "no free address left in the service CIDR %s", c.cfg.cidr)
			return
		}
		p.picked, spec.ClusterIP = addr, addr.String()
		p.create = newIPAddress(addr, p.out)
	}
	fillClusterIPFields(spec)
	p.allocated = append(p.allocated, "cluster IP "+spec.ClusterIP)
}

// planGivenAddress honours a clusterIP the service already has (written in
// Git, or allocated before) when it is free or already its own.
func (c *ServiceIPController) planGivenAddress(ctx context.Context, p *svcPlan) error {
	spec := &p.out.Spec
	addr, err := netip.ParseAddr(spec.ClusterIP)
	if err != nil || !addr.Is4() {
		p.fail(ReasonNotInServiceCIDR, "clusterIP %q is not an IPv4 address", spec.ClusterIP)
		return nil
	}
	if _, ok := c.cfg.cidr.Offset(addr); !ok {
		p.fail(ReasonNotInServiceCIDR, "clusterIP %s is not in the service CIDR %s", addr, c.cfg.cidr)
		return nil
	}
	if owner := c.reservedOwner(addr); owner != "" && owner != p.key {
		p.fail(ReasonClusterIPTaken, "%s is held by service %s", addr, owner)
		return nil
	}
	holder, err := c.reservation(ctx, addr)
	if err != nil {
		return fmt.Errorf("service %s: %w", p.key, err)
	}
	switch {
	case holder == nil:
		p.create = newIPAddress(addr, p.out)
	case parentService(holder) != p.key:
		p.fail(ReasonClusterIPTaken, "%s is held by %s", addr, holderName(holder))
		return nil
	}
	fillClusterIPFields(spec)
	p.allocated = append(p.allocated, "cluster IP "+spec.ClusterIP)
	return nil
}

// reservedOwner is the control plane's service that addr is kept for, if
// any: it is its own even before the service is made.
func (c *ServiceIPController) reservedOwner(addr netip.Addr) string {
	switch addr {
	case c.cfg.cidr.APIServerIP():
		return servicenet.APIServiceNamespace + "/" + servicenet.APIServiceName
	case c.cfg.cidr.DNSIP():
		return servicenet.DNSServiceNamespace + "/" + servicenet.DNSServiceName
	}
	return ""
}

// reservation returns the IPAddress of addr, or nil. When the cache has
// none the store is asked, so that a reservation another writer just made
// is not taken for a free address.
func (c *ServiceIPController) reservation(ctx context.Context, addr netip.Addr) (*networkingv1.IPAddress, error) {
	if ip, ok := GetCached[*networkingv1.IPAddress](c.addresses, "", addr.String()); ok {
		return ip, nil
	}
	ip := &networkingv1.IPAddress{}
	switch err := c.st.Get(ctx, "", addr.String(), ip); {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reservation of %s: %w", addr, err)
	}
	return ip, nil
}

func holderName(ip *networkingv1.IPAddress) string {
	if key := parentService(ip); key != "" {
		return "service " + key
	}
	if ref := ip.Spec.ParentRef; ref != nil {
		return strings.TrimSuffix(ref.Resource+"."+ref.Group, ".") + " " + joinName(ref.Namespace, ref.Name)
	}
	return "IPAddress " + ip.Name
}

// newIPAddress is the reservation of addr for svc.
func newIPAddress(addr netip.Addr, svc *corev1.Service) *networkingv1.IPAddress {
	return &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: addr.String(), Labels: map[string]string{
			servicenet.LabelIPAddressManagedBy: servicenet.IPAddressManagedBy,
			servicenet.LabelIPFamily:           string(corev1.IPv4Protocol),
		}},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{
			Resource: "services", Namespace: svc.Namespace, Name: svc.Name}},
	}
}

// fillClusterIPFields fills what kube-apiserver fills beside clusterIP.
func fillClusterIPFields(spec *corev1.ServiceSpec) {
	if len(spec.ClusterIPs) == 0 {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	if spec.IPFamilyPolicy == nil {
		single := corev1.IPFamilyPolicySingleStack
		spec.IPFamilyPolicy = &single
	}
}

// planNodePorts honours the node ports the service has when they are in
// range and free, gives ports without one a free one (the same one for
// ports of one number and different protocols), and takes them all back
// from a service whose type has none.
func (c *ServiceIPController) planNodePorts(p *svcPlan) {
	ports := p.out.Spec.Ports
	if !servicenet.HasNodePorts(p.out) {
		for i := range ports {
			ports[i].NodePort = 0
		}
		return
	}
	for i := range ports {
		sp := &ports[i]
		if sp.NodePort == 0 {
			continue
		}
		if !c.cfg.ports.Contains(sp.NodePort) {
			p.fail(ReasonNotInNodePortRange, "nodePort %d of port %s is not in the node port range %s", sp.NodePort, portName(sp), c.cfg.ports)
		} else if h := c.ports.claim(p.key, sp.NodePort); h != "" {
			p.fail(ReasonNodePortTaken, "node port %d is held by service %s", sp.NodePort, h)
		} else {
			p.ports[sp.NodePort] = true
		}
	}
	if !servicenet.AllocatesNodePorts(p.out) {
		return
	}
	for i := range ports {
		sp := &ports[i]
		if sp.NodePort != 0 {
			continue
		}
		if np := sharedNodePort(ports, i); p.ports[np] {
			sp.NodePort = np
			continue
		}
		np, ok := c.ports.pick(p.key, p.ports)
		if !ok {
			p.fail(ReasonNodePortRangeFull, "no free node port left in %s for port %s", c.cfg.ports, portName(sp))
			continue
		}
		sp.NodePort, p.ports[np] = np, true
	}
}

// sharedNodePort is the node port of another port of the same number and a
// different protocol, or 0.
func sharedNodePort(ports []corev1.ServicePort, i int) int32 {
	for j, o := range ports {
		if j != i && o.Port == ports[i].Port && o.Protocol != ports[i].Protocol && o.NodePort != 0 {
			return o.NodePort
		}
	}
	return 0
}

func portName(sp *corev1.ServicePort) string {
	if sp.Name != "" {
		return sp.Name
	}
	return strconv.Itoa(int(sp.Port)) + "/" + string(sp.Protocol)
}

// setAllocatedCondition sets the IPAllocated condition on p.out, only when
// something of it changed, so an unchanged service is not written.
func setAllocatedCondition(p *svcPlan) {
	cond := metav1.Condition{Type: servicenet.ConditionIPAllocated, Status: metav1.ConditionTrue, Reason: ReasonAllocated}
	if len(p.failures) > 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, p.failures[0].reason
		cond.Message = strings.Join(failureMessages(p.failures), "; ")
	} else {
		msg := p.allocated
		if len(p.ports) > 0 {
			ports := make([]string, 0, len(p.ports))
			for _, np := range slices.Sorted(maps.Keys(p.ports)) {
				ports = append(ports, strconv.Itoa(int(np)))
			}
			msg = append(msg, "node ports "+strings.Join(ports, ","))
		}
		cond.Message = strings.Join(msg, ", ")
	}
	// The store bumps the generation when the spec changes: the condition
	// is about the spec being written.
	cond.ObservedGeneration = p.in.Generation
	if !equality.Semantic.DeepEqual(p.in.Spec, p.out.Spec) {
		cond.ObservedGeneration++
	}
	old := meta.FindStatusCondition(p.out.Status.Conditions, cond.Type)
	if old != nil && old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message &&
		old.ObservedGeneration == cond.ObservedGeneration {
		return
	}
	p.condChanged = old == nil || old.Status != cond.Status || old.Reason != cond.Reason || old.Message != cond.Message
	meta.SetStatusCondition(&p.out.Status.Conditions, cond)
}

func failureMessages(fs []allocFailure) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.message
	}
	return out
}
