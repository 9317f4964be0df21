package reconciler

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// BenchmarkSchedule is issue 8's figure, kube-scheduler_perf's
// SchedulingBasic/5000Nodes_10000Pods through keelson's store: 5,000 nodes
// are registered, then 10,000 pending pods are written in transactions of
// 1,000, and the clock runs until a watch has seen every pod bound. It
// reports pods bound per second and the heap the control plane holds at the
// end. With anti-affinity, every pod of a group of 100 must avoid the nodes
// (topologyKey hostname) holding another pod of its group. etcd runs as a
// separate process (Debian's etcd) so the heap is the control plane's own.
//
//	go test -run '^$' -bench Schedule -benchtime 1x ./reconciler/
func BenchmarkSchedule(b *testing.B) {
	b.Run("5000Nodes_10000Pods", func(b *testing.B) { benchSchedule(b, 5000, 10000, false) })
	b.Run("5000Nodes_10000Pods_AntiAffinity", func(b *testing.B) { benchSchedule(b, 5000, 10000, true) })
}

func benchSchedule(b *testing.B, nodes, pods int, antiAffinity bool) {
	endpoints := etcdtest.External(b)
	for range b.N {
		st := etcdtest.NewStoreAt(b, endpoints)
		ctx, cancel := context.WithCancel(context.Background())
		benchNodes(ctx, b, st, nodes)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		opts := Options{LeaderElection: LeaderElection{Disabled: true}, NodeLifecycle: NodeLifecycleOptions{Disabled: true}}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(ctx, st, testLog(), opts)
		}()
		// Let the informers list the nodes first, as a running cluster would have.
		time.Sleep(2 * time.Second)
		w, err := st.Watch(ctx, store.MustResource("pods"), store.WatchOptions{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		go benchPods(ctx, b, st, pods, antiAffinity)
		bound := map[string]bool{}
		for len(bound) < pods {
			ev, ok := <-w.ResultChan()
			if !ok {
				b.Fatal("pod watch ended")
			}
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Modified && p.Spec.NodeName != "" {
				bound[p.Name] = true
			}
		}
		elapsed := time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(elapsed.Seconds(), "s-all-bound")
		b.ReportMetric(float64(pods)/elapsed.Seconds(), "pods/s")
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "MB-heap")
		w.Stop()
		cancel()
		<-done
	}
}

func benchNodes(ctx context.Context, b *testing.B, st *store.Store, nodes int) {
	var ops []store.Op
	for i := range nodes {
		n := testNode(fmt.Sprintf("node-%05d", i))
		n.Labels[zoneLabel] = fmt.Sprintf("zone-%d", i%3)
		ops = append(ops, store.CreateOp(n))
		if len(ops) == 500 || i == nodes-1 {
			if err := st.Txn(ctx, ops...); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
}

func benchPods(ctx context.Context, b *testing.B, st *store.Store, pods int, antiAffinity bool) {
	var ops []store.Op
	for i := range pods {
		group := fmt.Sprintf("g%03d", i/100)
		p := pendingPod(fmt.Sprintf("pod-%05d", i), requests("100m", "128Mi"))
		p.Labels = map[string]string{"group": group}
		if antiAffinity {
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"group": group}},
					TopologyKey:   corev1.LabelHostname,
				}},
			}}
		}
		ops = append(ops, store.CreateOp(p))
		if len(ops) == 1000 || i == pods-1 {
			if err := st.Txn(ctx, ops...); err != nil && ctx.Err() == nil {
				b.Error(err)
				return
			}
			ops = ops[:0]
		}
	}
}
