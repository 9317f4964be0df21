package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/proxy"
	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/internal/netnstest"
	"github.com/keelson/keelson/reconciler"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// The size issue 15 names for the endpoint-change goal.
const (
	rulesServices = 1000
	rulesPods     = 10 // per service
	rulesNode     = "node-1"
)

// BenchmarkEndpointChangeToRules is issue 15's "endpoint change → rules in
// place" over the whole control path: 1,000 services of 10 ready pods each
// in the store (embedded etcd), the controllers (cluster IPs and
// EndpointSlices), the API server over HTTP, and a node proxy fed by
// client-go informers over that API, programming a network namespace of its
// own. Each iteration flips one pod's readiness in the store (unready, then
// ready again, each service in turn) and times the write until the kernel
// shows the change: the service's pick map in the nftables table no longer
// (or again) leads to the pod's endpoint chain. The kernel's own
// notification of each committed nftables transaction wakes the check, so
// nothing polls. Flips are spaced by the proxy's minimum sync period, so
// each is measured alone rather than waiting out the previous one's window.
func BenchmarkEndpointChangeToRules(b *testing.B) {
	st := etcdtest.NewStore(b)
	pods := writeRulesObjects(b, st)
	startControlPlane(b, st)
	node := netnstest.New(b, "node")
	k := openKernelRules(b, node)
	startProxier(b, apiFor(b, st), node)
	k.waitAll(b, pods)

	ctx := b.Context()
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		flip := i / 2
		svc := flip % rulesServices
		p := pods[svc][(flip/rulesServices)%rulesPods]
		ready := i%2 == 1
		setPodReady(p, ready)
		k.drain()
		t0 := time.Now()
		if err := st.Update(ctx, p); err != nil {
			b.Fatalf("flip %s to ready=%v: %v", p.Name, ready, err)
		}
		k.waitPod(b, svcName(svc), p.Status.PodIP, ready)
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		time.Sleep(proxy.DefaultMinSyncPeriod)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.95), "p95-ms")
	b.ReportMetric(float64(k.timerWakeups)/float64(len(lat)), "timer-wakeups/op")
}

func svcName(i int) string { return fmt.Sprintf("app-%04d", i) }

// writeRulesObjects stores the node, the services (cluster IPs left to the
// allocator) and their pods (running, ready, with IPs, bound to the node),
// and returns the pods by service.
func writeRulesObjects(b *testing.B, st *store.Store) [][]*corev1.Pod {
	objs := []store.Object{&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: rulesNode, Labels: map[string]string{corev1.LabelHostname: rulesNode}},
		Spec:       corev1.NodeSpec{PodCIDR: "10.42.0.0/16"},
	}}
	pods := make([][]*corev1.Pod, rulesServices)
	for s := range rulesServices {
		name := svcName(s)
		objs = append(objs, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		})
		for j := range rulesPods {
			n := s*rulesPods + j
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("%s-%d", name, j), Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{NodeName: rulesNode, Containers: []corev1.Container{{Name: "main", Image: "web"}}},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.42.%d.%d", n/250, n%250+1)},
			}
			p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
			setPodReady(p, true)
			pods[s] = append(pods[s], p)
			objs = append(objs, p)
		}
	}
	for len(objs) > 0 {
		n := min(len(objs), 500)
		ops := make([]store.Op, n)
		for i, o := range objs[:n] {
			ops[i] = store.CreateOp(o)
		}
		if err := st.Txn(b.Context(), ops...); err != nil {
			b.Fatal(err)
		}
		objs = objs[n:]
	}
	return pods
}

func setPodReady(p *corev1.Pod, ready bool) {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
}

// startControlPlane runs the controllers on st until the benchmark ends. The
// scheduler and node lifecycle are off: the pods are bound already, and the
// node sends no heartbeat.
func startControlPlane(b *testing.B, st *store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := reconciler.Run(ctx, st, quietLogger(), reconciler.Options{
			LeaderElection: reconciler.LeaderElection{Disabled: true},
			Scheduler:      reconciler.SchedulerOptions{Disabled: true},
			NodeLifecycle:  reconciler.NodeLifecycleOptions{Disabled: true},
		})
		if err != nil && ctx.Err() == nil {
			b.Errorf("controllers: %v", err)
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
}

// apiFor serves st through the API server over HTTP and returns its URL.
func apiFor(b *testing.B, st *store.Store) string {
	tokens, err := apiserver.ParseTokens(strings.NewReader(
		fmt.Sprintf("node-token,system:node:%s,uid-node,\"system:nodes\"\n", rulesNode)))
	if err != nil {
		b.Fatal(err)
	}
	srv := apiserver.New(apiserver.Config{Store: st, Tokens: tokens, Logger: quietLogger()})
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { srv.Close(); ts.Close() })
	return ts.URL
}

// startProxier runs a node proxy, as the agent does, with informers over the
// API as the node, programming ns; it stops and removes its table when the
// benchmark ends.
func startProxier(b *testing.B, apiURL string, ns *netnstest.NS) {
	client, err := agent.NewClient([]string{apiURL}, "node-token", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	p, err := proxy.New(proxy.Config{
		Services:       factory.Core().V1().Services().Informer(),
		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
		Nodes:          factory.Core().V1().Nodes().Informer(),
		NodeName:       rulesNode, Masquerade: true, NetNS: ns.Path, Logger: quietLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			b.Errorf("node proxy: %v", err)
		}
	})
	b.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
		if err := proxy.Cleanup(ns.Path, proxy.DefaultTable); err != nil {
			b.Errorf("remove the proxy's table: %v", err)
		}
	})
}

// tableOf is the proxy's table in a namespace.
var tableOf = &nftables.Table{Name: proxy.DefaultTable, Family: nftables.TableFamilyIPv4}
