package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// describeControlPlane is the control plane's objects in st as one line
// each, "" for one that is missing.
func describeControlPlane(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	get := func(what, ns, name string, obj store.Object, describe func() string) {
		switch err := st.Get(t.Context(), ns, name, obj); {
		case errors.Is(err, store.ErrNotFound):
			out[what] = ""
		case err != nil:
			t.Fatal(err)
		default:
			out[what] = describe()
		}
	}
	ns := &corev1.Namespace{}
	get("namespace", "", "kube-system", ns, func() string { return fmt.Sprint(ns.Labels) })
	for _, key := range []string{"default/kubernetes", "kube-system/kube-dns"} {
		n, name, _ := strings.Cut(key, "/")
		svc, slice, ep := &corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Endpoints{}
		get("service "+key, n, name, svc, func() string { return describeSystemService(svc) })
		get("slice "+key, n, name, slice, func() string { return describeSlice(slice) })
		get("endpoints "+key, n, name, ep, func() string { return fmt.Sprintf("%v %+v", ep.Labels, ep.Subsets) })
	}
	cidr := &networkingv1.ServiceCIDR{}
	get("servicecidr", "", servicenet.ServiceCIDRName, cidr, func() string {
		c := meta.FindStatusCondition(cidr.Status.Conditions, networkingv1.ServiceCIDRConditionReady)
		return fmt.Sprintf("%v %v Ready=%v", cidr.Labels, cidr.Spec.CIDRs, c != nil && c.Status == metav1.ConditionTrue)
	})
	return out
}

func describeSystemService(s *corev1.Service) string {
	var ports []string
	for _, p := range s.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s %d/%s->%s", p.Name, p.Port, p.Protocol, p.TargetPort.String()))
	}
	c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionIPAllocated)
	return fmt.Sprintf("%s %v %s %v selector %v allocated=%v", s.Spec.Type, s.Labels, s.Spec.ClusterIP, ports, s.Spec.Selector,
		c != nil && c.Status == metav1.ConditionTrue)
}

func describeSlice(s *discoveryv1.EndpointSlice) string {
	var eps, ports []string
	for _, e := range s.Endpoints {
		eps = append(eps, fmt.Sprintf("%v ready=%v serving=%v terminating=%v", e.Addresses, *e.Conditions.Ready, *e.Conditions.Serving, *e.Conditions.Terminating))
	}
	for _, p := range s.Ports {
		ports = append(ports, fmt.Sprintf("%s %d/%s", *p.Name, *p.Port, *p.Protocol))
	}
	return fmt.Sprintf("%s %v endpoints %v ports %v", s.AddressType, s.Labels, eps, ports)
}

const (
	cpLabel      = keelsonv1alpha1.LabelControlPlane + ":true"
	sliceLabels  = "map[endpointslice.kubernetes.io/managed-by:control-plane.keelson.dev " + cpLabel + " kubernetes.io/service-name:%s]"
	endpointsFmt = "map[endpointslice.kubernetes.io/skip-mirror:true " + cpLabel + "] %s"
)

// wantControlPlane is what describeControlPlane shows for a /16 at prefix
// (e.g. "10.96.0") with the control plane at addr serving the API and DNS
// on apiPort and dnsPort, or no endpoint when published is false.
func wantControlPlane(prefix, cidr, addr string, apiPort, dnsPort int, published bool) map[string]string {
	want := map[string]string{
		"namespace":                  "map[]",
		"service default/kubernetes": fmt.Sprintf("ClusterIP map[component:apiserver %s provider:kubernetes] %s.1 [https 443/TCP->%d] selector map[] allocated=true", cpLabel, prefix, apiPort),
		"service kube-system/kube-dns": fmt.Sprintf("ClusterIP map[k8s-app:kube-dns %s] %s.10 [dns 53/UDP->%d dns-tcp 53/TCP->%d] selector map[] allocated=true",
			cpLabel, prefix, dnsPort, dnsPort),
		"slice default/kubernetes":       "IPv4 " + fmt.Sprintf(sliceLabels, "kubernetes") + " endpoints [] ports []",
		"slice kube-system/kube-dns":     "IPv4 " + fmt.Sprintf(sliceLabels, "kube-dns") + " endpoints [] ports []",
		"endpoints default/kubernetes":   fmt.Sprintf(endpointsFmt, "[]"),
		"endpoints kube-system/kube-dns": fmt.Sprintf(endpointsFmt, "[]"),
		"servicecidr":                    "map[" + cpLabel + "] [" + cidr + "] Ready=true",
	}
	if published {
		ep := fmt.Sprintf("[[%s] ready=true serving=true terminating=false]", addr)
		want["slice default/kubernetes"] = fmt.Sprintf("IPv4 "+sliceLabels+" endpoints %s ports [https %d/TCP]", "kubernetes", ep, apiPort)
		want["slice kube-system/kube-dns"] = fmt.Sprintf("IPv4 "+sliceLabels+" endpoints %s ports [dns %d/UDP dns-tcp %d/TCP]", "kube-dns", ep, dnsPort, dnsPort)
		want["endpoints default/kubernetes"] = fmt.Sprintf(endpointsFmt, fmt.Sprintf("[{Addresses:[{IP:%s Hostname: NodeName:<nil> TargetRef:nil}] NotReadyAddresses:[] Ports:[{Name:https Port:%d Protocol:TCP AppProtocol:<nil>}]}]", addr, apiPort))
		want["endpoints kube-system/kube-dns"] = fmt.Sprintf(endpointsFmt, fmt.Sprintf("[{Addresses:[{IP:%s Hostname: NodeName:<nil> TargetRef:nil}] NotReadyAddresses:[] Ports:[{Name:dns Port:%d Protocol:UDP AppProtocol:<nil>} {Name:dns-tcp Port:%d Protocol:TCP AppProtocol:<nil>}]}]", addr, dnsPort, dnsPort))
	}
	return want
}

func waitControlPlane(t *testing.T, st *store.Store, want map[string]string) {
	t.Helper()
	eventually(t, "the control plane's objects", func() (bool, string) {
		got := describeControlPlane(t, st)
		for k, v := range want {
			if got[k] != v {
				return false, fmt.Sprintf("%s:\n got  %q\n want %q", k, got[k], v)
			}
		}
		return true, ""
	})
}

// TestControlPlaneServices: the kubernetes and kube-dns services appear on
// the CIDR's first and tenth addresses with the options' address and ports
// as their endpoint, reserved like any other, with their slices, Endpoints,
// kube-system and the ServiceCIDR; whatever is deleted or changed comes back.
func TestControlPlaneServices(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, servicesOptions(ServiceOptions{CIDR: "10.96.0.0/16", Address: "192.0.2.7", APIPort: 7443, DNSPort: 5353}))
	want := wantControlPlane("10.96.0", "10.96.0.0/16", "192.0.2.7", 7443, 5353, true)
	waitControlPlane(t, st, want)
	byIP := checkReservations(t, st)
	if byIP["10.96.0.1"] != "default/kubernetes" || byIP["10.96.0.10"] != "kube-system/kube-dns" {
		t.Errorf("reservations: %v", byIP)
	}

	// A pass over objects that are as they should be writes nothing.
	before := controlPlaneVersions(t, st)
	if err := st.Delete(t.Context(), store.MustResource("servicecidrs.networking.k8s.io"), "", servicenet.ServiceCIDRName, nil); err != nil {
		t.Fatal(err)
	}
	waitControlPlane(t, st, want)
	for k, rv := range controlPlaneVersions(t, st) {
		if k != "servicecidr" && rv != before[k] {
			t.Errorf("%s rewritten (resourceVersion %s, was %s)", k, rv, before[k])
		}
	}

	old := getService(t, st, "default", "kubernetes")
	del := func(res, ns, name string) {
		if err := st.Delete(t.Context(), store.MustResource(res), ns, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	del("services", "default", "kubernetes")
	del("endpointslices.discovery.k8s.io", "kube-system", "kube-dns")
	del("endpoints", "default", "kubernetes")
	del("servicecidrs.networking.k8s.io", "", servicenet.ServiceCIDRName)
	changeService(t, st, "kube-system", "kube-dns", func(s *corev1.Service) { s.Spec.Ports = s.Spec.Ports[:1] })
	waitControlPlane(t, st, want)
	if cur := getService(t, st, "default", "kubernetes"); cur.UID == old.UID {
		t.Error("the kubernetes service was not made again")
	}
	eventually(t, "10.96.0.1 reserved for the new kubernetes service", func() (bool, string) {
		byIP := checkReservations(t, st)
		return byIP["10.96.0.1"] == "default/kubernetes", fmt.Sprint(byIP)
	})
}

// controlPlaneVersions returns the resourceVersions of the control plane's
// objects.
func controlPlaneVersions(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range []struct {
		what, ns, name string
		obj            store.Object
	}{
		{"namespace", "", "kube-system", &corev1.Namespace{}},
		{"service kubernetes", "default", "kubernetes", &corev1.Service{}},
		{"service kube-dns", "kube-system", "kube-dns", &corev1.Service{}},
		{"slice kubernetes", "default", "kubernetes", &discoveryv1.EndpointSlice{}},
		{"slice kube-dns", "kube-system", "kube-dns", &discoveryv1.EndpointSlice{}},
		{"endpoints kubernetes", "default", "kubernetes", &corev1.Endpoints{}},
		{"endpoints kube-dns", "kube-system", "kube-dns", &corev1.Endpoints{}},
		{"servicecidr", "", servicenet.ServiceCIDRName, &networkingv1.ServiceCIDR{}},
	} {
		if err := st.Get(t.Context(), o.ns, o.name, o.obj); err != nil {
			t.Fatal(err)
		}
		out[o.what] = o.obj.GetResourceVersion()
	}
	return out
}

// TestControlPlaneServicesNoEndpoint: without an address or a port the
// slices and Endpoints have no endpoint, so connections are refused at once.
func TestControlPlaneServicesNoEndpoint(t *testing.T) {
	tests := []struct {
		name string
		opts ServiceOptions
	}{
		{"no ports", ServiceOptions{Address: "192.0.2.7"}},
		{"no address", ServiceOptions{APIPort: 7443, DNSPort: 5353}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := etcdtest.NewStore(t)
			startControllers(t, st, servicesOptions(tt.opts))
			api, dns := int(tt.opts.APIPort), int(tt.opts.DNSPort)
			if api == 0 {
				api, dns = 443, 53
			}
			waitControlPlane(t, st, wantControlPlane("10.43.0", "10.43.0.0/16", "", api, dns, false))
		})
	}
}

// TestRunRejectsInvalidServiceOptions: Run returns an error naming the bad
// option instead of starting.
func TestRunRejectsInvalidServiceOptions(t *testing.T) {
	tests := []struct {
		name string
		opts ServiceOptions
		want string
	}{
		{"cidr", ServiceOptions{CIDR: "10.43.0.0/30"}, `service CIDR "10.43.0.0/30": too small`},
		{"ipv6 cidr", ServiceOptions{CIDR: "fd00::/108"}, "IPv4 only"},
		{"range", ServiceOptions{NodePortRange: "32767-30000"}, `node port range "32767-30000"`},
		{"address", ServiceOptions{Address: "fe80::1"}, `control plane address "fe80::1"`},
		{"port", ServiceOptions{APIPort: 70000}, "control plane API port 70000"},
	}
	st := etcdtest.NewStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			opts := servicesOptions(tt.opts)
			opts.LeaderElection.Disabled = true
			go func() { done <- Run(ctx, st, testLog(), opts) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Run: %v, want an error with %q", err, tt.want)
				}
			case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
				cancel()
				<-done
				t.Fatal("Run started with invalid options")
			}
		})
	}
}
