package reconciler

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestServiceIPTwoAllocators: two controller managers on one etcd (no
// leader election, so both allocate) race on 240 services in a /24 with
// 252 free addresses: every service gets an address and none is given
// twice.
func TestServiceIPTwoAllocators(t *testing.T) {
	prefix := fmt.Sprintf("/keelson-test/svcrace-%d/registry", time.Now().UnixNano())
	a, _ := sharedStore(t, prefix)
	b, _ := sharedStore(t, prefix)
	opts := servicesOptions(ServiceOptions{CIDR: "10.96.0.0/24"})
	startControllers(t, a, opts)
	startControllers(t, b, opts)
	const n = 240
	ops := make([]store.Op, n)
	for i := range n {
		ops[i] = store.CreateOp(gitService("shop", fmt.Sprintf("svc-%03d", i)))
	}
	if err := a.Txn(t.Context(), ops...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		waitAllocated(t, a, "shop", fmt.Sprintf("svc-%03d", i), metav1.ConditionTrue, ReasonAllocated)
	}
	waitAllocated(t, a, servicenet.DNSServiceNamespace, servicenet.DNSServiceName, metav1.ConditionTrue, ReasonAllocated)
	waitAllocated(t, a, servicenet.APIServiceNamespace, servicenet.APIServiceName, metav1.ConditionTrue, ReasonAllocated)
	if byIP := checkReservations(t, a); len(byIP) != n+2 {
		t.Errorf("%d addresses held, want %d and the two control plane services'", len(byIP), n)
	}
	if ips := listIPAddresses(t, a); len(ips) != n+2 {
		t.Errorf("%d reservations, want %d", len(ips), n+2)
	}
}

// serviceSnapshot is what a restart must not change.
func serviceSnapshot(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range listServices(t, st) {
		out["service "+s.Namespace+"/"+s.Name] = fmt.Sprintf("rv %s ip %s ports %v", s.ResourceVersion, s.Spec.ClusterIP, nodePortsOf(s))
	}
	for name, r := range listIPAddresses(t, st) {
		out["ipaddress "+name] = fmt.Sprintf("uid %s rv %s", r.UID, r.ResourceVersion)
	}
	return out
}

// reconciledKeys records the keys the service IP controller's queues have
// finished with.
type reconciledKeys struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (r *reconciledKeys) record(queue, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[queue+" "+key] = true
}

func (r *reconciledKeys) has(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys[key]
}

// waitReconciled waits until every key has been reconciled.
func (r *reconciledKeys) wait(t *testing.T, keys []string) {
	t.Helper()
	eventually(t, "every service and reservation looked at", func() (bool, string) {
		for _, k := range keys {
			if !r.has(k) {
				return false, "not yet: " + k
			}
		}
		return true, ""
	})
}

// TestServiceIPRestart: a new manager on the same store keeps every cluster
// IP and node port, writes nothing and allocates nothing new, and then
// still refuses a node port that an existing service holds (its map was
// rebuilt from the store).
func TestServiceIPRestart(t *testing.T) {
	st := etcdtest.NewStore(t)
	stop := startControllers(t, st, testOptions())
	for i := range 30 {
		createObj(t, st, gitService("shop", fmt.Sprintf("svc-%02d", i)))
	}
	for i := range 10 {
		createObj(t, st, nodePortService("edge", fmt.Sprintf("np-%02d", i), port("http", corev1.ProtocolTCP, 80, 0),
			port("dns", corev1.ProtocolUDP, 53, 0), port("dns-tcp", corev1.ProtocolTCP, 53, 0)))
	}
	for i := range 30 {
		waitAllocated(t, st, "shop", fmt.Sprintf("svc-%02d", i), metav1.ConditionTrue, ReasonAllocated)
	}
	for i := range 10 {
		waitAllocated(t, st, "edge", fmt.Sprintf("np-%02d", i), metav1.ConditionTrue, ReasonAllocated)
	}
	waitAllocated(t, st, servicenet.DNSServiceNamespace, servicenet.DNSServiceName, metav1.ConditionTrue, ReasonAllocated)
	waitAllocated(t, st, servicenet.APIServiceNamespace, servicenet.APIServiceName, metav1.ConditionTrue, ReasonAllocated)
	before := serviceSnapshot(t, st)
	var keys []string
	for _, s := range listServices(t, st) {
		keys = append(keys, "service "+s.Namespace+"/"+s.Name)
	}
	for name := range listIPAddresses(t, st) {
		keys = append(keys, "repair "+name)
	}
	stop()

	seen := &reconciledKeys{keys: map[string]bool{}}
	opts := testOptions()
	opts.serviceIPReconciled = seen.record
	startControllers(t, st, opts)
	seen.wait(t, keys)
	after := serviceSnapshot(t, st)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s before the restart, %s after", k, v, after[k])
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d objects before the restart, %d after", len(before), len(after))
	}

	held := nodePortsOf(getService(t, st, "edge", "np-03"))[0]
	createObj(t, st, nodePortService("web", "copy", port("http", corev1.ProtocolTCP, 80, held)))
	s := waitAllocated(t, st, "web", "copy", metav1.ConditionFalse, ReasonNodePortTaken)
	if want := fmt.Sprintf("node port %d is held by service edge/np-03", held); allocatedMessage(s) != want {
		t.Errorf("message %q, want %q", allocatedMessage(s), want)
	}
	checkReservations(t, st)
	checkNodePorts(t, st)
}

func reservationFor(addr, ns, name, manager string) *networkingv1.IPAddress {
	ip := newIPAddress(netip.MustParseAddr(addr), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	ip.Labels[servicenet.LabelIPAddressManagedBy] = manager
	return ip
}

// TestServiceIPRepair: reservations keelson made whose service is gone or
// holds another address (what a crash leaves) are deleted at start and when
// they appear later; those of another manager are left alone, and a
// service's own stays.
func TestServiceIPRepair(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, gitService("shop", "kept", withClusterIP("10.43.5.5")))
	createObj(t, st, reservationFor("10.43.5.5", "shop", "kept", servicenet.IPAddressManagedBy))
	createObj(t, st, reservationFor("10.43.7.7", "shop", "gone", servicenet.IPAddressManagedBy))
	createObj(t, st, reservationFor("10.43.8.8", "shop", "kept", servicenet.IPAddressManagedBy))
	createObj(t, st, reservationFor("10.43.9.9", "shop", "gone", "other-allocator.example.com"))

	seen := &reconciledKeys{keys: map[string]bool{}}
	opts := testOptions()
	opts.serviceIPReconciled = seen.record
	startControllers(t, st, opts)
	eventually(t, "orphaned reservations deleted", func() (bool, string) {
		ips := listIPAddresses(t, st)
		return ips["10.43.7.7"] == nil && ips["10.43.8.8"] == nil, fmt.Sprint(len(ips), " reservations")
	})
	seen.wait(t, []string{"repair 10.43.9.9", "service shop/gone", "repair 10.43.5.5"})
	ips := listIPAddresses(t, st)
	if ips["10.43.9.9"] == nil {
		t.Error("another manager's reservation was deleted")
	}
	if ips["10.43.5.5"] == nil || parentService(ips["10.43.5.5"]) != "shop/kept" {
		t.Errorf("kept's reservation: %+v", ips["10.43.5.5"])
	}
	if s := waitAllocated(t, st, "shop", "kept", metav1.ConditionTrue, ReasonAllocated); s.Spec.ClusterIP != "10.43.5.5" {
		t.Errorf("kept has %s", s.Spec.ClusterIP)
	}

	createObj(t, st, reservationFor("10.43.7.8", "shop", "gone-too", servicenet.IPAddressManagedBy))
	eventually(t, "a new orphan deleted", func() (bool, string) {
		return listIPAddresses(t, st)["10.43.7.8"] == nil, "still there"
	})
	if listIPAddresses(t, st)["10.43.9.9"] == nil {
		t.Error("another manager's reservation was deleted")
	}
}
