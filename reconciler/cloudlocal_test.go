package reconciler

import (
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/reconciler/cloud/local"
	"github.com/keelson/keelson/store/etcdtest"
)

// localOptions run the controllers with the local provider, built by name
// for each term as keelson server does, over pool.
func localOptions(pool ...string) Options {
	registerLocal()
	opts := cloudOptions(nil)
	opts.CloudProvider = local.Name
	opts.CloudConfig = cloud.Config{LBPool: pool}
	return opts
}

// registerLocal registers the local provider once, as keelson server does.
var registerLocal = sync.OnceFunc(func() { cloud.Register(local.Name, local.New) })

// TestCloudLocalLoadBalancerPool: with the local provider, a LoadBalancer
// service gets an address of the pool in its status; when the pool is
// exhausted the next one waits, failing, until the first is deleted and
// its address is free.
func TestCloudLocalLoadBalancerPool(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, localOptions("10.99.0.7/32"))
	createObj(t, st, lbService("a"))
	waitLB(t, st, "a", "ingress=10.99.0.7 cond=True/LoadBalancerReady fin=true")
	createObj(t, st, lbService("b"))
	b := waitLB(t, st, "b", "ingress= cond=False/SyncLoadBalancerFailed fin=true")
	if msg := lbCondition(b).Message; !strings.Contains(msg, "no free IPv4 address left in the load balancer pool 10.99.0.7/32") {
		t.Errorf("b's condition: %q", msg)
	}
	markServiceDeleted(t, st, "a")
	waitServiceGone(t, st, "a")
	waitLB(t, st, "b", "ingress=10.99.0.7 cond=True/LoadBalancerReady fin=true")
}

// TestCloudLocalLoadBalancerRestart: a new term's provider knows nothing
// but the services' status: each service keeps its address, and one made
// meanwhile gets another.
func TestCloudLocalLoadBalancerRestart(t *testing.T) {
	st := etcdtest.NewStore(t)
	stop := startControllers(t, st, localOptions("10.99.0.0/29"))
	createObj(t, st, lbService("a"))
	waitLB(t, st, "a", "ingress=10.99.0.1 cond=True/LoadBalancerReady fin=true")
	createObj(t, st, lbService("b"))
	waitLB(t, st, "b", "ingress=10.99.0.2 cond=True/LoadBalancerReady fin=true")
	stop()

	// Made while no controller runs, already allocated and finalized (as
	// Git may write them) and first by name, c is the first service the
	// one worker of the new term ensures: only the others' status tells
	// the new provider their addresses are taken.
	createObj(t, st, lbService("0c", func(s *corev1.Service) {
		s.Finalizers = []string{cloud.LoadBalancerCleanupFinalizer}
		s.Spec.ClusterIP, s.Spec.Ports[0].NodePort = "10.43.0.50", 30050
	}))
	opts := localOptions("10.99.0.0/29")
	opts.Queue.Workers = 1
	startControllers(t, st, opts)
	waitLB(t, st, "0c", "ingress=10.99.0.3 cond=True/LoadBalancerReady fin=true")
	waitLB(t, st, "a", "ingress=10.99.0.1 cond=True/LoadBalancerReady fin=true")
	waitLB(t, st, "b", "ingress=10.99.0.2 cond=True/LoadBalancerReady fin=true")
}

// TestCloudLocalFreedAddressWakesTheWaiting: a service that waits for the
// exhausted pool gets the address as soon as the service holding it is
// deleted, though its back-off (five minutes here, beyond the test's
// bound on waiting) has not run out.
func TestCloudLocalFreedAddressWakesTheWaiting(t *testing.T) {
	st := etcdtest.NewStore(t)
	opts := localOptions("10.99.0.7/32")
	opts.Queue.BaseDelay, opts.Queue.MaxDelay = 5*time.Minute, 5*time.Minute
	// Allocated and finalized as Git and the allocator leave them, so that
	// the load balancer controller is the only writer that may fail.
	allocated := func(ip string, port int32) func(*corev1.Service) {
		return func(s *corev1.Service) {
			s.Finalizers = []string{cloud.LoadBalancerCleanupFinalizer}
			s.Spec.ClusterIP, s.Spec.Ports[0].NodePort = ip, port
		}
	}
	createObj(t, st, lbService("a", allocated("10.43.0.51", 30051)))
	startControllers(t, st, opts)
	waitLB(t, st, "a", "ingress=10.99.0.7 cond=True/LoadBalancerReady fin=true")
	createObj(t, st, lbService("b", allocated("10.43.0.52", 30052)))
	waitLB(t, st, "b", "ingress= cond=False/SyncLoadBalancerFailed fin=true")
	markServiceDeleted(t, st, "a")
	waitLB(t, st, "b", "ingress=10.99.0.7 cond=True/LoadBalancerReady fin=true")
}
