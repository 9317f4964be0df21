package reconciler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func port(name string, proto corev1.Protocol, number, nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: number, TargetPort: intstr.FromInt32(number), NodePort: nodePort}
}

func nodePortService(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return gitService(ns, name, func(s *corev1.Service) {
		s.Spec.Type, s.Spec.Ports = corev1.ServiceTypeNodePort, ports
	})
}

func nodePortsOf(s *corev1.Service) []int32 {
	out := make([]int32, len(s.Spec.Ports))
	for i, p := range s.Spec.Ports {
		out[i] = p.NodePort
	}
	return out
}

// checkNodePorts fails when one node port is held by two services (those
// whose IPAllocated is True).
func checkNodePorts(t *testing.T, st *store.Store) {
	t.Helper()
	holder := map[int32]string{}
	for _, s := range listServices(t, st) {
		c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionIPAllocated)
		if c == nil || c.Status != metav1.ConditionTrue {
			continue
		}
		key := s.Namespace + "/" + s.Name
		for _, p := range s.Spec.Ports {
			if h, ok := holder[p.NodePort]; ok && h != key && p.NodePort != 0 {
				t.Errorf("node port %d held by %s and %s", p.NodePort, h, key)
			}
			holder[p.NodePort] = key
		}
	}
}

// TestServiceNodePorts: ports without a node port get free ones of the
// range (53/TCP and 53/UDP one and the same); one from Git is honoured, or
// refused when taken or out of range; a service that becomes ClusterIP
// gives its port back to the service waiting for it.
func TestServiceNodePorts(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, testOptions())
	createObj(t, st, nodePortService("shop", "auto", port("http", corev1.ProtocolTCP, 80, 0),
		port("dns", corev1.ProtocolUDP, 53, 0), port("dns-tcp", corev1.ProtocolTCP, 53, 0)))
	createObj(t, st, nodePortService("shop", "git", port("http", corev1.ProtocolTCP, 80, 30005)))
	auto := waitAllocated(t, st, "shop", "auto", metav1.ConditionTrue, ReasonAllocated)
	// The first 86 ports of the default range are kept for ports written
	// in Git, as Kubernetes keeps them: 30005 is not handed out.
	np := nodePortsOf(auto)
	if np[0] < 30086 || np[0] > 32767 || np[1] < 30086 || np[1] > 32767 || np[0] == np[1] || np[1] != np[2] {
		t.Errorf("auto got node ports %v: want two different ones of the range above 30085, the same for 53/UDP and 53/TCP", np)
	}
	if got := waitAllocated(t, st, "shop", "git", metav1.ConditionTrue, ReasonAllocated); nodePortsOf(got)[0] != 30005 {
		t.Errorf("git got %v, want 30005 from Git", nodePortsOf(got))
	}

	tests := []struct {
		name    string
		port    corev1.ServicePort
		reason  string
		message string
	}{
		{"taken", port("http", corev1.ProtocolTCP, 80, 30005), ReasonNodePortTaken, "node port 30005 is held by service shop/git"},
		{"outside", port("", corev1.ProtocolTCP, 8080, 8080), ReasonNotInNodePortRange, "nodePort 8080 of port 8080/TCP is not in the node port range 30000-32767"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			createObj(t, st, nodePortService("web", tt.name, tt.port))
			s := waitAllocated(t, st, "web", tt.name, metav1.ConditionFalse, tt.reason)
			if got := allocatedMessage(s); got != tt.message {
				t.Errorf("message %q, want %q", got, tt.message)
			}
			if h := HealthOf(s); h.Status != Degraded {
				t.Errorf("health %+v", h)
			}
			waitEvent(t, st, "web", tt.name, tt.reason, tt.message)
		})
	}
	checkNodePorts(t, st)

	// shop/git becomes ClusterIP: its node port is cleared and goes to the
	// service that wanted it.
	changeService(t, st, "shop", "git", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })
	if got := waitAllocated(t, st, "shop", "git", metav1.ConditionTrue, ReasonAllocated); nodePortsOf(got)[0] != 0 {
		t.Errorf("ClusterIP service keeps node port %v", nodePortsOf(got))
	}
	if got := waitAllocated(t, st, "web", "taken", metav1.ConditionTrue, ReasonAllocated); nodePortsOf(got)[0] != 30005 {
		t.Errorf("web/taken has %v", nodePortsOf(got))
	}

	checkNodePorts(t, st)
}

// TestServiceNodePortRangeFull: when the range is full a service says so,
// and gets the port a deleted service gives back.
func TestServiceNodePortRangeFull(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, servicesOptions(ServiceOptions{NodePortRange: "30000-30003"}))
	createObj(t, st, nodePortService("shop", "git", port("http", corev1.ProtocolTCP, 80, 30002)))
	waitAllocated(t, st, "shop", "git", metav1.ConditionTrue, ReasonAllocated)
	createObj(t, st, nodePortService("shop", "two", port("http", corev1.ProtocolTCP, 80, 0), port("https", corev1.ProtocolTCP, 443, 0)))
	createObj(t, st, nodePortService("shop", "one", port("http", corev1.ProtocolTCP, 80, 0)))
	two := nodePortsOf(waitAllocated(t, st, "shop", "two", metav1.ConditionTrue, ReasonAllocated))
	waitAllocated(t, st, "shop", "one", metav1.ConditionTrue, ReasonAllocated)
	createObj(t, st, nodePortService("shop", "late", port("http", corev1.ProtocolTCP, 80, 0)))
	late := waitAllocated(t, st, "shop", "late", metav1.ConditionFalse, ReasonNodePortRangeFull)
	if msg := allocatedMessage(late); msg != "no free node port left in 30000-30003 for port http" {
		t.Errorf("message %q", msg)
	}
	if err := st.Delete(t.Context(), store.MustResource("services"), "shop", "two", nil); err != nil {
		t.Fatal(err)
	}
	late = waitAllocated(t, st, "shop", "late", metav1.ConditionTrue, ReasonAllocated)
	if p := nodePortsOf(late)[0]; p != two[0] && p != two[1] {
		t.Errorf("late got %d, want one that shop/two gave back (%v)", p, two)
	}
	checkNodePorts(t, st)
}

// TestServiceNodePortsLoadBalancer: a LoadBalancer service gets node ports
// unless allocateLoadBalancerNodePorts is false.
func TestServiceNodePortsLoadBalancer(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, testOptions())
	lb := func(name string, allocate *bool) *corev1.Service {
		return gitService("shop", name, func(s *corev1.Service) {
			s.Spec.Type, s.Spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeLoadBalancer, allocate
		})
	}
	createObj(t, st, lb("default", nil))
	createObj(t, st, lb("none", ptr.To(false)))
	if got := nodePortsOf(waitAllocated(t, st, "shop", "default", metav1.ConditionTrue, ReasonAllocated))[0]; got < 30000 || got > 32767 {
		t.Errorf("LoadBalancer got node port %d", got)
	}
	none := waitAllocated(t, st, "shop", "none", metav1.ConditionTrue, ReasonAllocated)
	if got := nodePortsOf(none)[0]; got != 0 || none.Spec.ClusterIP == "" {
		t.Errorf("allocateLoadBalancerNodePorts false: node port %d, clusterIP %q", got, none.Spec.ClusterIP)
	}
}
