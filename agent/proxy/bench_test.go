package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/keelson/keelson/internal/netnstest"
)

const (
	benchServices  = 1000
	benchEndpoints = 10
)

func benchIP(n int, base byte) string {
	return fmt.Sprintf("10.%d.%d.%d", base, n/250, n%250+1)
}

// BenchmarkProxyEndpointChange programs 1,000 services of 10 endpoints
// each, then replaces one endpoint of one service per iteration (a pod
// replaced) and measures the time from the EndpointSlice update to the
// completed transaction: p50-ms and p95-ms. initial-sync-ms is the first,
// full sync of the whole table, restart-sync-ms a new proxier's reconcile
// of the table the first one left (reading it all back, writing nothing).
func BenchmarkProxyEndpointChange(b *testing.B) {
	node := netnstest.New(b, "node")
	cs, sls := benchObjects()
	factory := informers.NewSharedInformerFactory(cs, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer factory.Shutdown()
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	p, err := New(Config{
		Services:       factory.Core().V1().Services().Informer(),
		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
		Nodes:          factory.Core().V1().Nodes().Informer(),
		NodeName:       thisNode, Masquerade: true, NetNS: node.Path,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(runCtx) })
	defer wg.Wait()
	defer stop()
	waitApplied(b, p, 0)
	initial := time.Since(start)

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s := sls[i%benchServices].DeepCopy()
		j := (i / benchServices) % benchEndpoints
		s.Endpoints[j].Addresses = []string{benchIP((i%benchServices)*benchEndpoints+j, byte(44+i/(benchServices*benchEndpoints)%2))}
		sls[i%benchServices] = s
		n := p.Applied()
		t0 := time.Now()
		if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitApplied(b, p, n)
		lat = append(lat, time.Since(t0))
		// Changes spaced by the sync period, so each is measured alone
		// rather than waiting for the previous one's window.
		b.StopTimer()
		time.Sleep(DefaultMinSyncPeriod)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*95)/100]), "p95-ms")
	b.ReportMetric(ms(initial), "initial-sync-ms")
	stop()
	wg.Wait()
	b.ReportMetric(ms(benchRestart(b, p.cfg)), "restart-sync-ms")
	if err := Cleanup(node.Path, DefaultTable); err != nil {
		b.Fatal(err)
	}
}

// benchRestart times a new proxier's reconcile of the table the last one
// left, which must find nothing to write.
func benchRestart(b *testing.B, cfg Config) time.Duration {
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	start := time.Now()
	wg.Go(func() { p.Run(ctx) })
	waitApplied(b, p, 0)
	took := time.Since(start)
	if ops := p.ops.Load(); ops != 0 {
		b.Fatalf("a restart over an unchanged table wrote %d operations", ops)
	}
	return took
}

// benchObjects makes the services and slices of the benchmark in a fake
// API.
func benchObjects() (*fake.Clientset, []*discoveryv1.EndpointSlice) {
	var objs []runtime.Object
	var sls []*discoveryv1.EndpointSlice
	for i := range benchServices {
		name := fmt.Sprintf("svc%d", i)
		objs = append(objs, service(name, benchIP(i, 43)))
		var eps []ep
		for j := range benchEndpoints {
			eps = append(eps, ready(benchIP(i*benchEndpoints+j, 42)))
		}
		s := slice(name, corev1.ProtocolTCP, 8080, eps...)
		sls = append(sls, s)
		objs = append(objs, s)
	}
	objs = append(objs, nodeObj())
	return fake.NewClientset(objs...), sls
}

func waitApplied(b testing.TB, p *Proxier, n uint64) {
	deadline := time.Now().Add(time.Minute)
	for p.Applied() <= n {
		if time.Now().After(deadline) {
			b.Fatalf("no sync after %d", n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func nodeObj() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: thisNode},
		Spec:       corev1.NodeSpec{PodCIDR: "10.42.0.0/16"},
	}
}
