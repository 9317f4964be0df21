package reconciler

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// BenchmarkDaemonSet5000Nodes is issue 17's figure: a DaemonSet appears in
// a cluster of 5,000 simulated nodes; it reports the time until every node
// has its pod, bound (the DaemonSet controller binds them itself), and pods
// per second. etcd runs as a separate process (Debian's etcd), as for the
// scheduler's figure.
//
//	go test -run '^$' -bench DaemonSet5000Nodes -benchtime 1x ./reconciler/
func BenchmarkDaemonSet5000Nodes(b *testing.B) {
	const nodes = 5000
	endpoints := etcdtest.External(b)
	for range b.N {
		st := etcdtest.NewStoreAt(b, endpoints)
		ctx, cancel := context.WithCancel(context.Background())
		benchNodes(ctx, b, st, nodes)
		opts := Options{LeaderElection: LeaderElection{Disabled: true}, NodeLifecycle: NodeLifecycleOptions{Disabled: true}}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(ctx, st, testLog(), opts)
		}()
		time.Sleep(2 * time.Second) // the informers list the nodes first, as in a running cluster
		w, err := st.Watch(ctx, store.MustResource("pods"), store.WatchOptions{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := st.Create(ctx, newDaemonSet("node-agent", nil)); err != nil {
			b.Fatal(err)
		}
		onNode := map[string]bool{}
		for len(onNode) < nodes {
			ev, ok := <-w.ResultChan()
			if !ok {
				b.Fatal("pod watch ended")
			}
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added && p.Spec.NodeName != "" {
				onNode[p.Spec.NodeName] = true
			}
		}
		elapsed := time.Since(start)
		b.ReportMetric(elapsed.Seconds(), "s-all-bound")
		b.ReportMetric(float64(nodes)/elapsed.Seconds(), "pods/s")
		w.Stop()
		cancel()
		<-done
	}
}

// BenchmarkCronJobs1000 is issue 17's other figure: 1,000 CronJobs of every
// minute, on the injected clock. Each round steps the clock a minute and
// has the controller handle every CronJob, which starts 1,000 Jobs; it
// reports the CPU the process spent per simulated minute (the controller,
// its informers, its etcd client and events) as a percentage of one core
// over that minute. etcd runs as a separate process (Debian's etcd), so its
// own work on the writes is not counted.
//
//	go test -run '^$' -bench CronJobs1000 -benchtime 5x ./reconciler/
func BenchmarkCronJobs1000(b *testing.B) {
	const crons = 1000
	st := etcdtest.NewStoreAt(b, etcdtest.External(b))
	inf := NewInformers(st, 0, testLog())
	rec := NewRecorder(st, "cronjob-controller", testLog())
	clk := testingclock.NewFakeClock(time.Now().Truncate(time.Minute).Add(time.Minute + 30*time.Second))
	c := NewCronJobController(st, inf, rec, CronJobOptions{Clock: clk}, QueueOptions{Workers: 2}, testLog())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inf.Start(ctx)
	go rec.Run(ctx)
	if !inf.WaitForSync(ctx) {
		b.Fatal("caches never synced")
	}
	var ops []store.Op
	for i := range crons {
		ops = append(ops, store.CreateOp(newCronJob(fmt.Sprintf("c%04d", i), "* * * * *", func(cj *batchv1.CronJob) {
			cj.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
			cj.Spec.SuccessfulJobsHistoryLimit = new(int32) // keep none: each round's Jobs are this round's alone
		})))
		if len(ops) == 500 {
			if err := st.Txn(ctx, ops...); err != nil {
				b.Fatal(err)
			}
			ops = nil
		}
	}
	keys := func() []string {
		var out []string
		for _, o := range c.crons.GetIndexer().List() {
			out = append(out, "default/"+o.(*batchv1.CronJob).Name)
		}
		return out
	}
	for len(keys()) < crons {
		time.Sleep(10 * time.Millisecond)
	}
	var cpu time.Duration
	rounds := 0
	for b.Loop() {
		clk.Step(time.Minute)
		before := processCPU()
		for _, k := range keys() {
			if _, err := c.Reconcile(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
		cpu += processCPU() - before
		rounds++
	}
	perMinute := cpu / time.Duration(rounds)
	b.ReportMetric(float64(perMinute.Milliseconds()), "cpu-ms/min")
	b.ReportMetric(100*perMinute.Seconds()/60, "%core")
	runtime.KeepAlive(c)
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
