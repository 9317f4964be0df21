package e2e

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/agent/runtime/runtimetest"
	"github.com/keelson/keelson/store"
)

// runningWatch reports, by pod name, when the store first shows it Running.
func runningWatch(b testing.TB, s *store.Store) (<-chan string, func()) {
	pods, _ := store.ResourceByName("pods")
	w, err := s.Watch(context.Background(), pods, store.WatchOptions{Namespace: "default"})
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan string, 1024)
	go func() {
		seen := map[string]bool{}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				continue
			}
			p, ok := ev.Object.(*corev1.Pod)
			if ok && p.Status.Phase == corev1.PodRunning && !seen[p.Name] {
				seen[p.Name] = true
				out <- p.Name
			}
		}
		close(out)
	}()
	return out, w.Stop
}

func percentiles(b *testing.B, ds []time.Duration, prefix string) {
	slices.Sort(ds)
	at := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Milliseconds()) }
	b.ReportMetric(at(0.5), prefix+"p50-ms")
	b.ReportMetric(at(0.95), prefix+"p95-ms")
}

// BenchmarkPodStart is a pod's time from bound (written to the store with
// its node) to Running reported back in the store, through the API, the agent,
// CNI and containerd; beside it, raw containerd create+start of the same
// container on the same containerd, in the same run.
func BenchmarkPodStart(b *testing.B) {
	n := startNode(b, "node-1", "10.99.10.0/24")
	ctx := context.Background()
	running, stop := runningWatch(b, n.store)
	defer stop()
	pods, _ := store.ResourceByName("pods")
	seq := 0

	startPods := func(b *testing.B, count int) []time.Duration {
		names := make([]string, count)
		begin := make(map[string]time.Time, count)
		for i := range names {
			seq++
			names[i] = fmt.Sprintf("p-%d", seq)
		}
		for _, name := range names {
			begin[name] = time.Now()
			if err := n.store.Create(ctx, sleeperPod(name)); err != nil {
				b.Fatal(err)
			}
		}
		var ds []time.Duration
		timeout := time.After(2 * time.Minute)
		for len(ds) < count {
			select {
			case name := <-running:
				if t0, ok := begin[name]; ok {
					ds = append(ds, time.Since(t0))
				}
			case <-timeout:
				b.Fatalf("%d of %d pods running after 2 minutes", len(ds), count)
			}
		}
		b.StopTimer()
		for _, name := range names {
			if err := n.store.Delete(ctx, pods, "default", name, nil); err != nil {
				b.Fatal(err)
			}
		}
		waitNoContainers(b, n.rt)
		b.StartTimer()
		return ds
	}
	// The raw baseline runs in a containerd namespace of its own, which the
	// agent does not look at (in its own, it stops containers of no pod).
	raw := rawRuntime(b, n)
	rawStart := func(b *testing.B, count int) []time.Duration {
		ds := make([]time.Duration, count)
		ids := make([]string, count)
		t0 := time.Now()
		for i := range count {
			seq++
			spec := runtimetest.Spec(fmt.Sprintf("raw-%d", seq), "sleep", "3600")
			id, err := raw.Create(ctx, spec)
			if err != nil {
				b.Fatal(err)
			}
			if err := raw.Start(ctx, id); err != nil {
				b.Fatal(err)
			}
			ids[i], ds[i] = id, time.Since(t0)
		}
		b.StopTimer()
		for _, id := range ids {
			raw.Remove(ctx, id)
		}
		b.StartTimer()
		return ds
	}
	// rawParallel starts count containers at once, as many as the pod
	// workers, the floor for pods started at once.
	rawParallel := func(b *testing.B, count int) []time.Duration {
		ds := make([]time.Duration, count)
		ids := make([]string, count)
		t0 := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for i := range count {
			seq++
			spec := runtimetest.Spec(fmt.Sprintf("raw-%d", seq), "sleep", "3600")
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				id, err := raw.Create(ctx, spec)
				if err != nil {
					b.Error(err)
					return
				}
				if err := raw.Start(ctx, id); err != nil {
					b.Error(err)
				}
				ids[i], ds[i] = id, time.Since(t0)
			})
		}
		wg.Wait()
		b.StopTimer()
		for _, id := range ids {
			raw.Remove(ctx, id)
		}
		b.StartTimer()
		return ds
	}
	for _, tc := range []struct {
		name  string
		count int
		run   func(*testing.B, int) []time.Duration
	}{
		{"pod/1", 1, startPods}, {"containerd/1", 1, rawStart},
		{"pod/30", 30, startPods}, {"containerd/30", 30, rawStart}, {"containerd-parallel/30", 30, rawParallel},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var all, last []time.Duration
			for b.Loop() {
				ds := tc.run(b, tc.count)
				all = append(all, ds...)
				last = append(last, slices.Max(ds))
			}
			percentiles(b, all, "each-")
			percentiles(b, last, "all-")
		})
	}
}

// rawRuntime connects to the node's containerd in a namespace of its own,
// with the node's logging binary and the busybox image.
func rawRuntime(b *testing.B, n *node) *containerd.Runtime {
	rt, err := containerd.New(b.Context(), n.ctd.Socket, "bench-raw", containerd.WithLogDriver(logger))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	var archive bytes.Buffer
	if err := ociarchive.BuildBusybox(&archive, "/bin/busybox", ociarchive.BusyboxRef); err != nil {
		b.Fatal(err)
	}
	if _, err := rt.Import(b.Context(), &archive); err != nil {
		b.Fatal(err)
	}
	return rt
}

func waitNoContainers(b *testing.B, rt runtime.Runtime) {
	deadline := time.Now().Add(time.Minute)
	for {
		cs, err := rt.List(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(cs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d containers left a minute after their pods were deleted", len(cs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
