package reconciler

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// BenchmarkDeploymentsAppear is issue 7's figure: 1,000 Deployments of 10
// replicas appear at once (one sync, one transaction); it reports the time
// until all 10,000 pods exist, pods created per second, and the heap the
// controllers hold with everything cached. etcd runs as a separate process
// (Debian's etcd) so the heap is the controllers' own.
//
//	go test -run '^$' -bench DeploymentsAppear -benchtime 1x ./reconciler/
func BenchmarkDeploymentsAppear(b *testing.B) {
	const deployments, replicas = 1000, 10
	endpoints := etcdtest.External(b)
	for range b.N {
		st := etcdtest.NewStoreAt(b, endpoints)
		ctx, cancel := context.WithCancel(context.Background())
		pods := store.MustResource("pods")
		w, err := st.Watch(ctx, pods, store.WatchOptions{})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		opts := Options{LeaderElection: LeaderElection{Disabled: true},
			Scheduler: SchedulerOptions{Disabled: true}, NodeLifecycle: NodeLifecycleOptions{Disabled: true}}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(ctx, st, testLog(), opts)
		}()
		ops := make([]store.Op, deployments)
		for i := range ops {
			ops[i] = store.CreateOp(newDeployment(fmt.Sprintf("app-%04d", i), replicas, "web:1"))
		}
		start := time.Now()
		if err := st.Txn(ctx, ops...); err != nil {
			b.Fatal(err)
		}
		created := 0
		for created < deployments*replicas {
			ev, ok := <-w.ResultChan()
			if !ok {
				b.Fatal("pod watch ended")
			}
			if ev.Type == watch.Added {
				if _, ok := ev.Object.(*corev1.Pod); ok {
					created++
				}
			}
		}
		elapsed := time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(elapsed.Seconds(), "s-all-pods")
		b.ReportMetric(float64(created)/elapsed.Seconds(), "pods/s")
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "MB-heap")
		w.Stop()
		cancel()
		<-done
	}
}
