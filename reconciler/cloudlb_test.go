package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// cloudOptions run the controllers with provider p (nil: none) and a short
// resync.
func cloudOptions(p cloud.Interface) Options {
	opts := testOptions()
	opts.Cloud = p
	opts.CloudResync = 20 * time.Millisecond
	return opts
}

// startCloud makes the nodes, then runs the controllers with provider p.
func startCloud(t *testing.T, p cloud.Interface, nodes ...*corev1.Node) *store.Store {
	t.Helper()
	st := etcdtest.NewStore(t)
	for _, n := range nodes {
		createObj(t, st, n)
	}
	startControllers(t, st, cloudOptions(p))
	return st
}

// cloudNode is a node, Ready or not.
func cloudNode(name string, ready bool, mutate ...func(*corev1.Node)) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}},
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func nodeReadyAs(ready bool) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Status.Conditions = cloudNode(n.Name, ready).Status.Conditions
	}
}

// lbService is a LoadBalancer service of namespace default, as Git would
// create it.
func lbService(name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

// describeLB is what the load balancer controller wrote on a service:
// "ingress=192.0.2.1 cond=True/LoadBalancerReady fin=true".
func describeLB(s *corev1.Service) string {
	var ips []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP)
	}
	cond := "none"
	if c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionLoadBalancer); c != nil {
		cond = string(c.Status) + "/" + c.Reason
	}
	return fmt.Sprintf("ingress=%s cond=%s fin=%v", strings.Join(ips, ","), cond, slices.Contains(s.Finalizers, cloud.LoadBalancerCleanupFinalizer))
}

// waitLB waits until describeLB of service name is want, and returns the
// service.
func waitLB(t *testing.T, st *store.Store, name, want string) *corev1.Service {
	t.Helper()
	var s *corev1.Service
	eventually(t, "service "+name+": "+want, func() (bool, string) {
		s = getService(t, st, "default", name)
		got := describeLB(s)
		return got == want, got
	})
	return s
}

func lbCondition(s *corev1.Service) metav1.Condition {
	if c := meta.FindStatusCondition(s.Status.Conditions, servicenet.ConditionLoadBalancer); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// waitEvents waits until the events of an object include every line of want
// ("Reason Message" prefixes).
func waitEvents(t *testing.T, st *store.Store, kind, name string, want ...string) {
	t.Helper()
	eventually(t, kind+" "+name+" events "+strings.Join(want, ", "), func() (bool, string) {
		got := eventsFor(t, st, kind, name)
		for _, w := range want {
			if !slices.ContainsFunc(strings.Split(got, "\n"), func(l string) bool { return strings.HasPrefix(l, w) }) {
				return false, got
			}
		}
		return true, ""
	})
}

// eventCount is the count of an object's events of one reason.
func eventCount(t *testing.T, st *store.Store, kind, name, reason string) int32 {
	t.Helper()
	var n int32
	for _, ev := range listEvents(t, st) {
		if ev.InvolvedObject.Kind == kind && ev.InvolvedObject.Name == name && ev.Reason == reason {
			n += ev.Count
		}
	}
	return n
}

// markServiceDeleted asks for the service's deletion as gitsync does for an
// object with finalizers.
func markServiceDeleted(t *testing.T, st *store.Store, name string) {
	t.Helper()
	changeService(t, st, "default", name, func(s *corev1.Service) {
		now := metav1.Now()
		s.DeletionTimestamp = &now
	})
}

func waitServiceGone(t *testing.T, st *store.Store, name string) {
	t.Helper()
	eventually(t, "service "+name+" gone", func() (bool, string) {
		s := &corev1.Service{}
		err := st.Get(t.Context(), "default", name, s)
		return err != nil, describeLB(s)
	})
}

// TestCloudLoadBalancerEnsure: a LoadBalancer service, once it has its
// cluster IP and node ports, gets the finalizer, a load balancer over the
// Ready, schedulable, not excluded nodes (every not excluded node for
// externalTrafficPolicy Local), its status and the condition, with the
// events Kubernetes writes.
func TestCloudLoadBalancerEnsure(t *testing.T) {
	fake := newFakeCloud()
	st := startCloud(t, fake,
		cloudNode("n1", true), cloudNode("n2", true), cloudNode("n3", false),
		cloudNode("n4", true, func(n *corev1.Node) { n.Spec.Unschedulable = true }),
		cloudNode("n5", true, func(n *corev1.Node) { n.Labels = map[string]string{corev1.LabelNodeExcludeBalancers: ""} }))
	createObj(t, st, lbService("web"))
	s := waitLB(t, st, "web", "ingress=192.0.2.1 cond=True/LoadBalancerReady fin=true")
	if c := lbCondition(s); c.Message != "load balancer at 192.0.2.1" || c.ObservedGeneration != s.Generation {
		t.Errorf("condition %+v, generation %d", c, s.Generation)
	}
	if got := fake.callsOf("ensure default/web"); !slices.Equal(got, []string{"ensure default/web n1,n2"}) {
		t.Errorf("ensure calls %q, want one with the Ready schedulable nodes n1,n2", got)
	}
	if e := fake.ensured("default/web"); e.Spec.ClusterIP == "" || e.Spec.Ports[0].NodePort == 0 {
		t.Errorf("ensured before allocation: clusterIP %q nodePort %d", e.Spec.ClusterIP, e.Spec.Ports[0].NodePort)
	}
	waitEvents(t, st, "Service", "web", "EnsuringLoadBalancer Ensuring load balancer", "EnsuredLoadBalancer Ensured load balancer")

	createObj(t, st, lbService("local", func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}))
	waitLB(t, st, "local", "ingress=192.0.2.2 cond=True/LoadBalancerReady fin=true")
	if got := fake.callsOf("ensure default/local"); !slices.Equal(got, []string{"ensure default/local n1,n2,n3,n4"}) {
		t.Errorf("ensure calls %q, want every node but the excluded n5", got)
	}
}

// TestCloudLoadBalancerRetriesFailures: while the provider fails, the
// service shows the condition False with the error and a Warning event;
// the queue retries with back-off until the provider succeeds.
func TestCloudLoadBalancerRetriesFailures(t *testing.T) {
	fake := newFakeCloud()
	fake.failNext("ensure", 1<<30)
	st := startCloud(t, fake, cloudNode("n1", true))
	createObj(t, st, lbService("web"))
	s := waitLB(t, st, "web", "ingress= cond=False/SyncLoadBalancerFailed fin=true")
	if c := lbCondition(s); c.Message != "ensure: injected failure" {
		t.Errorf("condition message %q", c.Message)
	}
	waitEvents(t, st, "Service", "web", "SyncLoadBalancerFailed Error syncing load balancer: ensure: injected failure")
	eventually(t, "several retries", func() (bool, string) {
		n := len(fake.callsOf("ensure default/web"))
		return n >= 3, fmt.Sprint(n, " calls")
	})
	fake.failNext("ensure", 0)
	waitLB(t, st, "web", "ingress=192.0.2.1 cond=True/LoadBalancerReady fin=true")
	if n := eventCount(t, st, "Service", "web", eventSyncLBFailed); n < 1 {
		t.Errorf("%d SyncLoadBalancerFailed events", n)
	}
}

// TestCloudLoadBalancerNodeChanges: when the set of nodes changes, each
// load balancer is updated (not ensured again) with the new set.
func TestCloudLoadBalancerNodeChanges(t *testing.T) {
	fake := newFakeCloud()
	st := startCloud(t, fake, cloudNode("n1", true), cloudNode("n2", true))
	createObj(t, st, lbService("web"))
	waitLB(t, st, "web", "ingress=192.0.2.1 cond=True/LoadBalancerReady fin=true")

	createObj(t, st, cloudNode("n3", true))
	waitCall(t, fake, "update default/web n1,n2,n3")
	waitCall(t, fake, "get default/web") // the status after the update
	changeNode(t, st, "n1", nodeReadyAs(false))
	waitCall(t, fake, "update default/web n2,n3")
	changeNode(t, st, "n2", func(n *corev1.Node) { n.Labels = map[string]string{corev1.LabelNodeExcludeBalancers: "true"} })
	waitCall(t, fake, "update default/web n3")
	waitEvents(t, st, "Service", "web", "UpdatedLoadBalancer Updated load balancer with new hosts")
	if got := fake.callsOf("ensure"); len(got) != 1 {
		t.Errorf("ensure calls %q, want the first only", got)
	}

	// A failed update is retried.
	fake.failNext("update", 2)
	changeNode(t, st, "n1", nodeReadyAs(true))
	waitEvents(t, st, "Service", "web", "UpdateLoadBalancerFailed Error updating load balancer with new hosts: update: injected failure")
	eventually(t, "the update retried until it succeeds", func() (bool, string) {
		got := fake.callsOf("update default/web n1,n3")
		return len(got) == 3, fmt.Sprint(got)
	})
	waitLB(t, st, "web", "ingress=192.0.2.1 cond=True/LoadBalancerReady fin=true")
}

func waitCall(t *testing.T, fake *fakeCloud, want string) {
	t.Helper()
	verb, _, _ := strings.Cut(want, " ")
	eventually(t, "call "+want, func() (bool, string) {
		got := fake.callsOf(verb + " ")
		return slices.Contains(got, want), fmt.Sprint(got)
	})
}

// TestCloudLoadBalancerDeletion: a service marked for deletion keeps its
// finalizer until its load balancer is deleted, then goes.
func TestCloudLoadBalancerDeletion(t *testing.T) {
	fake := newFakeCloud()
	st := startCloud(t, fake, cloudNode("n1", true))
	createObj(t, st, lbService("web"))
	waitLB(t, st, "web", "ingress=192.0.2.1 cond=True/LoadBalancerReady fin=true")
	fake.failNext("delete", 1<<30)
	markServiceDeleted(t, st, "web")
	waitLB(t, st, "web", "ingress=192.0.2.1 cond=False/SyncLoadBalancerFailed fin=true")
	waitEvents(t, st, "Service", "web", "SyncLoadBalancerFailed Error syncing load balancer: delete load balancer: delete: injected failure")
	fake.failNext("delete", 0)
	waitServiceGone(t, st, "web")
	if got := fake.callsOf("delete default/web"); len(got) < 2 {
		t.Errorf("delete calls %q, want the failed ones and the last", got)
	}
	waitEvents(t, st, "Service", "web", "DeletingLoadBalancer Deleting load balancer", "DeletedLoadBalancer Deleted load balancer")

	// A service deleted without waiting for its finalizer (forced) has its
	// load balancer deleted all the same.
	createObj(t, st, lbService("forced"))
	waitLB(t, st, "forced", "ingress=192.0.2.2 cond=True/LoadBalancerReady fin=true")
	if err := st.Delete(t.Context(), store.MustResource("services"), "default", "forced", nil); err != nil {
		t.Fatal(err)
	}
	waitCall(t, fake, "delete default/forced")
}

// TestCloudLoadBalancerTypeChange: a service no longer of type
// LoadBalancer loses its load balancer, its status, the condition and the
// finalizer.
func TestCloudLoadBalancerTypeChange(t *testing.T) {
	fake := newFakeCloud()
	st := startCloud(t, fake, cloudNode("n1", true))
	createObj(t, st, lbService("web"))
	waitLB(t, st, "web", "ingress=192.0.2.1 cond=True/LoadBalancerReady fin=true")
	changeService(t, st, "default", "web", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })
	waitLB(t, st, "web", "ingress= cond=none fin=false")
	waitCall(t, fake, "delete default/web")
}

// TestCloudLoadBalancerClassUntouched: a service with a loadBalancerClass is
// another controller's: no finalizer, no condition, no provider call.
func TestCloudLoadBalancerClassUntouched(t *testing.T) {
	fake := newFakeCloud()
	st := startCloud(t, fake, cloudNode("n1", true))
	createObj(t, st, lbService("other", func(s *corev1.Service) {
		s.Spec.LoadBalancerClass = ptr.To("example.com/lb")
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.7"}}
	}))
	waitAllocated(t, st, "default", "other", metav1.ConditionTrue, ReasonAllocated)
	// A service created after it and served proves the controller has
	// looked at it.
	createObj(t, st, lbService("web"))
	eventually(t, "web served", func() (bool, string) {
		c := lbCondition(getService(t, st, "default", "web"))
		return c.Status == metav1.ConditionTrue, c.Reason
	})
	if got := describeLB(getService(t, st, "default", "other")); got != "ingress=198.51.100.7 cond=none fin=false" {
		t.Errorf("class service: %s", got)
	}
	if got := fake.callsOf("ensure default/other"); len(got) > 0 {
		t.Errorf("provider called for it: %q", got)
	}
}

// TestCloudLoadBalancerNoProvider: with --cloud-provider none, a
// LoadBalancer service is told, once, that nothing gives it an address.
func TestCloudLoadBalancerNoProvider(t *testing.T) {
	st := startCloud(t, nil, cloudNode("n1", true))
	createObj(t, st, lbService("web"))
	s := waitLB(t, st, "web", "ingress= cond=False/NoCloudProvider fin=false")
	if c := lbCondition(s); !strings.Contains(c.Message, "--cloud-provider none") || !strings.Contains(c.Message, "nothing gives this service an external address") {
		t.Errorf("message %q", c.Message)
	}
	waitEvents(t, st, "Service", "web", "NoCloudProvider the control plane runs with --cloud-provider none")
	// More writes of the service write no more events.
	changeService(t, st, "default", "web", func(s *corev1.Service) { s.Labels = map[string]string{"v": "2"} })
	waitLB(t, st, "web", "ingress= cond=False/NoCloudProvider fin=false")
	if n := eventCount(t, st, "Service", "web", servicenet.ReasonNoCloudProvider); n != 1 {
		t.Errorf("%d NoCloudProvider events, want 1", n)
	}
	changeService(t, st, "default", "web", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	waitLB(t, st, "web", "ingress= cond=none fin=false")
}
