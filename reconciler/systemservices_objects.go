package reconciler

import (
	"maps"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/servicenet"
)

// systemService is one of the control plane's own services with the
// objects that publish its endpoint.
type systemService struct {
	svc   *corev1.Service
	slice *discoveryv1.EndpointSlice
	ep    *corev1.Endpoints
}

// systemServices are the kubernetes service (the API) and kube-dns (cluster
// DNS), as the options say they should be.
// systemServices are the control plane's services with their endpoints:
// the servers at addrs, or, when none is known, the configured address.
func systemServices(cfg serviceConfig, addrs []netip.Addr) []systemService {
	if len(addrs) == 0 && cfg.addr.IsValid() {
		addrs = []netip.Addr{cfg.addr}
	}
	api := systemService{svc: &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: servicenet.APIServiceNamespace, Name: servicenet.APIServiceName,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{ClusterIP: cfg.cidr.APIServerIP().String(), Ports: []corev1.ServicePort{
			{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: targetPort(443, cfg.apiPort)},
		}},
	}}
	dns := systemService{svc: &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: servicenet.DNSServiceNamespace, Name: servicenet.DNSServiceName,
			Labels: map[string]string{"k8s-app": "kube-dns"}},
		Spec: corev1.ServiceSpec{ClusterIP: cfg.cidr.DNSIP().String(), Ports: []corev1.ServicePort{
			{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: targetPort(53, cfg.dnsPort)},
			{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: targetPort(53, cfg.dnsPort)},
		}},
	}}
	api.publish(addrs, cfg.apiPort)
	dns.publish(addrs, cfg.dnsPort)
	return []systemService{api, dns}
}

// targetPort is the port the control plane serves on; the service's own
// port when it serves none (the slice then has no endpoint anyway).
func targetPort(port, serving int32) intstr.IntOrString {
	if serving == 0 {
		return intstr.FromInt32(port)
	}
	return intstr.FromInt32(serving)
}

// publish fills the service's defaults and makes its EndpointSlice and
// Endpoints: an endpoint per server address, on the target ports; none
// when there is no address or the port is unset, so that the node proxy
// refuses connections at once instead of sending them nowhere.
func (s *systemService) publish(addrs []netip.Addr, port int32) {
	svc := s.svc
	svc.Labels[keelsonv1alpha1.LabelControlPlane] = "true"
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	svc.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
	fillClusterIPFields(&svc.Spec)
	objMeta := func(labels map[string]string) metav1.ObjectMeta {
		l := map[string]string{keelsonv1alpha1.LabelControlPlane: "true"}
		maps.Copy(l, labels)
		return metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name, Labels: l}
	}
	s.slice = &discoveryv1.EndpointSlice{
		ObjectMeta: objMeta(map[string]string{servicenet.LabelServiceName: svc.Name,
			servicenet.LabelManagedBy: servicenet.ControlPlaneManagedBy}),
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	// The Endpoints are there for old clients only: the mirroring
	// controller must not make a second slice of them.
	s.ep = &corev1.Endpoints{ObjectMeta: objMeta(map[string]string{discoveryv1.LabelSkipMirror: "true"})}
	if len(addrs) == 0 || port == 0 {
		return
	}
	var subset corev1.EndpointSubset
	for _, addr := range addrs {
		subset.Addresses = append(subset.Addresses, corev1.EndpointAddress{IP: addr.String()})
		s.slice.Endpoints = append(s.slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr.String()}, Conditions: discoveryv1.EndpointConditions{
			Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}})
	}
	for _, sp := range svc.Spec.Ports {
		s.slice.Ports = append(s.slice.Ports, discoveryv1.EndpointPort{
			Name: ptr.To(sp.Name), Protocol: ptr.To(sp.Protocol), Port: ptr.To(port)})
		subset.Ports = append(subset.Ports, corev1.EndpointPort{Name: sp.Name, Protocol: sp.Protocol, Port: port})
	}
	s.ep.Subsets = []corev1.EndpointSubset{subset}
}

// serviceCIDRObject describes the service CIDR for those who read the API.
func serviceCIDRObject(cfg serviceConfig) *networkingv1.ServiceCIDR {
	o := &networkingv1.ServiceCIDR{
		ObjectMeta: metav1.ObjectMeta{Name: servicenet.ServiceCIDRName,
			Labels: map[string]string{keelsonv1alpha1.LabelControlPlane: "true"}},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{cfg.cidr.String()}},
	}
	setServiceCIDRReady(o, cfg)
	return o
}

func setServiceCIDRReady(o *networkingv1.ServiceCIDR, cfg serviceConfig) {
	meta.SetStatusCondition(&o.Status.Conditions, metav1.Condition{
		Type: networkingv1.ServiceCIDRConditionReady, Status: metav1.ConditionTrue, Reason: "Allocatable",
		Message: "cluster IPs are allocated from " + cfg.cidr.String()})
}

// withLabels returns have with every label of want set.
func withLabels(have, want map[string]string) map[string]string {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, want)
	return out
}
