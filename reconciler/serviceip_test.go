package reconciler

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// gitService is a Service as gitsync stores it from Git: the schema's
// defaults filled, nothing allocated, no selector (so that no endpoints
// controller writes to it).
func gitService(ns, name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone,
			InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyCluster),
			Ports:                 []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func withClusterIP(ip string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.ClusterIP = ip }
}

func servicesOptions(o ServiceOptions) Options {
	opts := testOptions()
	opts.Services = o
	return opts
}

func getService(t *testing.T, st *store.Store, ns, name string) *corev1.Service {
	t.Helper()
	s := &corev1.Service{}
	if err := st.Get(t.Context(), ns, name, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitAllocated waits until the service's IPAllocated condition has status
// and reason for its current generation, and returns the service.
func waitAllocated(t *testing.T, st *store.Store, ns, name string, status metav1.ConditionStatus, reason string) *corev1.Service {
	t.Helper()
	var s *corev1.Service
	eventually(t, fmt.Sprintf("service %s/%s: IPAllocated %s %s", ns, name, status, reason), func() (bool, string) {
		s = getService(t, st, ns, name)
		c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionIPAllocated)
		if c == nil {
			return false, "no IPAllocated condition"
		}
		return c.Status == status && c.Reason == reason && c.ObservedGeneration == s.Generation,
			fmt.Sprintf("%s %s %q (generation %d of %d), clusterIP %q", c.Status, c.Reason, c.Message, c.ObservedGeneration, s.Generation, s.Spec.ClusterIP)
	})
	return s
}

func allocatedMessage(s *corev1.Service) string {
	if c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionIPAllocated); c != nil {
		return c.Message
	}
	return ""
}

func listServices(t *testing.T, st *store.Store) []*corev1.Service {
	t.Helper()
	svcs, _ := servicesAt(t, st, "")
	return svcs
}

// servicesAt lists the services as of revision rv (the latest when empty),
// and returns the revision read.
func servicesAt(t *testing.T, st *store.Store, rv string) ([]*corev1.Service, string) {
	t.Helper()
	l, err := st.List(t.Context(), store.MustResource("services"), store.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*corev1.Service, len(l.Items))
	for i, o := range l.Items {
		out[i] = o.(*corev1.Service)
	}
	return out, l.ResourceVersion
}

func listIPAddresses(t *testing.T, st *store.Store) map[string]*networkingv1.IPAddress {
	t.Helper()
	return ipAddressesAt(t, st, "")
}

func ipAddressesAt(t *testing.T, st *store.Store, rv string) map[string]*networkingv1.IPAddress {
	t.Helper()
	l, err := st.List(t.Context(), store.MustResource("ipaddresses.networking.k8s.io"), store.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*networkingv1.IPAddress{}
	for _, o := range l.Items {
		out[o.GetName()] = o.(*networkingv1.IPAddress)
	}
	return out
}

// checkReservations checks the allocator's invariants over one snapshot of
// the store: no address held by two services, every address of a service
// whose IPAllocated is True reserved for it, every reservation keelson made
// held by its service. A service holds the address in its spec when it is
// reserved for it or its condition is True (an address from Git that was
// refused is in a spec without being held). It returns the services by
// address held.
func checkReservations(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	svcs, rv := servicesAt(t, st, "")
	ips := ipAddressesAt(t, st, rv)
	byIP := map[string]string{}
	for _, s := range svcs {
		ip, key := s.Spec.ClusterIP, s.Namespace+"/"+s.Name
		if ip == "" || ip == corev1.ClusterIPNone {
			continue
		}
		c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionIPAllocated)
		allocated := c != nil && c.Status == metav1.ConditionTrue
		r := ips[ip]
		if allocated && (r == nil || parentService(r) != key) {
			t.Errorf("service %s holds %s, reservation %+v", key, ip, r)
		}
		if !allocated && (r == nil || parentService(r) != key) {
			continue
		}
		if other, dup := byIP[ip]; dup {
			t.Errorf("%s is held by both %s and %s", ip, other, key)
		}
		byIP[ip] = key
	}
	for name, r := range ips {
		if managedByKeelson(r) && byIP[name] != parentService(r) {
			t.Errorf("reservation %s for %s, but the service holding it is %q", name, parentService(r), byIP[name])
		}
	}
	return byIP
}

// TestServiceIPManyAtOnce: 300 services created in one transaction get 300
// different addresses, above the static band, each reserved for its service,
// with the fields kube-apiserver fills beside clusterIP.
func TestServiceIPManyAtOnce(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, testOptions())
	const n = 300
	ops := make([]store.Op, n)
	for i := range n {
		ops[i] = store.CreateOp(gitService("shop", fmt.Sprintf("svc-%03d", i)))
	}
	if err := st.Txn(t.Context(), ops...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		waitAllocated(t, st, "shop", fmt.Sprintf("svc-%03d", i), metav1.ConditionTrue, ReasonAllocated)
	}
	byIP := checkReservations(t, st)
	cidr, _ := servicenet.ParseCIDR(servicenet.DefaultServiceCIDR)
	users := 0
	for ip, key := range byIP {
		if !strings.HasPrefix(key, "shop/") {
			continue
		}
		users++
		off, ok := cidr.Offset(netip.MustParseAddr(ip))
		if !ok || off <= cidr.StaticBand() {
			t.Errorf("%s got %s, offset %d: want one above the static band (%d)", key, ip, off, cidr.StaticBand())
		}
	}
	if users != n {
		t.Errorf("%d services hold an address, want %d", users, n)
	}
	s := getService(t, st, "shop", "svc-000")
	if fmt.Sprint(s.Spec.ClusterIPs) != "["+s.Spec.ClusterIP+"]" || fmt.Sprint(s.Spec.IPFamilies) != "[IPv4]" ||
		s.Spec.IPFamilyPolicy == nil || *s.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
		t.Errorf("filled fields: clusterIPs %v ipFamilies %v policy %v", s.Spec.ClusterIPs, s.Spec.IPFamilies, s.Spec.IPFamilyPolicy)
	}
	if got := allocatedMessage(s); got != "cluster IP "+s.Spec.ClusterIP {
		t.Errorf("condition message %q", got)
	}
}

// TestServiceIPFromGit: an address written in Git is honoured when free;
// one another service holds, one kept for kube-dns and one outside the CIDR
// are refused with a condition, an Event and Degraded health; the refused
// service gets its address once the holder lets it go.
func TestServiceIPFromGit(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, testOptions())
	createObj(t, st, gitService("shop", "cart", withClusterIP("10.43.0.20")))
	cart := waitAllocated(t, st, "shop", "cart", metav1.ConditionTrue, ReasonAllocated)
	if cart.Spec.ClusterIP != "10.43.0.20" {
		t.Fatalf("cart got %s, want the address from Git", cart.Spec.ClusterIP)
	}
	if r := listIPAddresses(t, st)["10.43.0.20"]; r == nil || parentService(r) != "shop/cart" ||
		r.Labels[servicenet.LabelIPFamily] != "IPv4" || !managedByKeelson(r) {
		t.Fatalf("reservation of 10.43.0.20: %+v", r)
	}

	tests := []struct {
		name, ip, reason, message string
	}{
		{"taken", "10.43.0.20", ReasonClusterIPTaken, "10.43.0.20 is held by service shop/cart"},
		{"dns", "10.43.0.10", ReasonClusterIPTaken, "10.43.0.10 is held by service kube-system/kube-dns"},
		{"outside", "10.44.0.5", ReasonNotInServiceCIDR, "clusterIP 10.44.0.5 is not in the service CIDR 10.43.0.0/16"},
		{"broadcast", "10.43.255.255", ReasonNotInServiceCIDR, "clusterIP 10.43.255.255 is not in the service CIDR 10.43.0.0/16"},
		{"garbage", "ten", ReasonNotInServiceCIDR, `clusterIP "ten" is not an IPv4 address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			createObj(t, st, gitService("web", tt.name, withClusterIP(tt.ip)))
			s := waitAllocated(t, st, "web", tt.name, metav1.ConditionFalse, tt.reason)
			if got := allocatedMessage(s); got != tt.message {
				t.Errorf("message %q, want %q", got, tt.message)
			}
			if h := HealthOf(s); h.Status != Degraded || h.Message != tt.message {
				t.Errorf("health %+v, want Degraded: %s", h, tt.message)
			}
			waitEvent(t, st, "web", tt.name, tt.reason, tt.message)
		})
	}
	checkReservations(t, st)

	// The holder goes: the service that wanted its address gets it.
	if err := st.Delete(t.Context(), store.MustResource("services"), "shop", "cart", nil); err != nil {
		t.Fatal(err)
	}
	taken := waitAllocated(t, st, "web", "taken", metav1.ConditionTrue, ReasonAllocated)
	if taken.Spec.ClusterIP != "10.43.0.20" {
		t.Errorf("web/taken has %s", taken.Spec.ClusterIP)
	}
	eventually(t, "10.43.0.20 reserved for web/taken", func() (bool, string) {
		r := listIPAddresses(t, st)["10.43.0.20"]
		return r != nil && parentService(r) == "web/taken", fmt.Sprintf("%+v", r)
	})
	checkReservations(t, st)
}

// waitEvent waits for an Event about the service with reason and message.
func waitEvent(t *testing.T, st *store.Store, ns, name, reason, message string) {
	t.Helper()
	eventually(t, fmt.Sprintf("event %s on %s/%s", reason, ns, name), func() (bool, string) {
		l, err := st.List(t.Context(), store.MustResource("events"), store.ListOptions{Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for _, o := range l.Items {
			ev := o.(*corev1.Event)
			if ev.InvolvedObject.Name == name && ev.InvolvedObject.Kind == "Service" {
				if ev.Reason == reason && ev.Message == message && ev.Type == corev1.EventTypeWarning {
					return true, ""
				}
				seen = append(seen, ev.Reason+": "+ev.Message)
			}
		}
		return false, fmt.Sprint(seen)
	})
}

// TestServiceIPCIDRFull: a /28 has 14 addresses, two kept for the kubernetes
// and DNS services: the 13th service finds none and says so; an address
// given back by a deleted service is handed out again.
func TestServiceIPCIDRFull(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, servicesOptions(ServiceOptions{CIDR: "10.96.0.0/28"}))
	for i := range 12 {
		createObj(t, st, gitService("shop", fmt.Sprintf("svc-%02d", i)))
	}
	got := map[string]string{}
	for i := range 12 {
		name := fmt.Sprintf("svc-%02d", i)
		got[name] = waitAllocated(t, st, "shop", name, metav1.ConditionTrue, ReasonAllocated).Spec.ClusterIP
		if got[name] == "10.96.0.1" || got[name] == "10.96.0.10" {
			t.Errorf("%s got %s, kept for the control plane", name, got[name])
		}
	}
	createObj(t, st, gitService("shop", "late"))
	late := waitAllocated(t, st, "shop", "late", metav1.ConditionFalse, ReasonServiceCIDRFull)
	if msg := allocatedMessage(late); msg != "no free address left in the service CIDR 10.96.0.0/28" {
		t.Errorf("message %q", msg)
	}
	if late.Spec.ClusterIP != "" {
		t.Errorf("late has %q", late.Spec.ClusterIP)
	}
	if h := HealthOf(late); h.Status != Degraded {
		t.Errorf("health %+v", h)
	}
	checkReservations(t, st)

	if err := st.Delete(t.Context(), store.MustResource("services"), "shop", "svc-05", nil); err != nil {
		t.Fatal(err)
	}
	late = waitAllocated(t, st, "shop", "late", metav1.ConditionTrue, ReasonAllocated)
	if late.Spec.ClusterIP != got["svc-05"] {
		t.Errorf("late got %s, want the freed %s", late.Spec.ClusterIP, got["svc-05"])
	}
	byIP := checkReservations(t, st)
	if len(byIP) != 14 {
		t.Errorf("%d addresses in use, want all 14: %v", len(byIP), byIP)
	}
}
