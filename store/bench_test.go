package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// Each benchmark runs keelson's store and the raw etcd client side by side on
// the same embedded etcd, doing the same etcd work: the difference is what the
// store adds (keys, encoding, metadata, decoding, selectors).

// benchPod is etcdtest.SamplePod: a pod of realistic size.
func benchPod(ns, name string) *corev1.Pod { return etcdtest.SamplePod(ns, name) }

func rawValue(b *testing.B, ns, name string) []byte {
	p := benchPod(ns, name)
	p.APIVersion, p.Kind = "v1", "Pod"
	v, err := json.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func BenchmarkCreate(b *testing.B) {
	b.Run("keelson", func(b *testing.B) {
		s := etcdtest.NewStore(b)
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if err := s.Create(ctx, benchPod("default", fmt.Sprintf("p-%d", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("etcd", func(b *testing.B) {
		s := etcdtest.NewStore(b)
		cli, ctx := s.Client(), context.Background()
		for i := 0; b.Loop(); i++ {
			// The same work: create-if-absent of an object of the same size.
			key := fmt.Sprintf("%s/pods/default/p-%d", s.Prefix(), i)
			v := rawValue(b, "default", key)
			_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, string(v))).Commit()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGet(b *testing.B) {
	s := etcdtest.NewStore(b)
	ctx := context.Background()
	if err := s.Create(ctx, benchPod("default", "web")); err != nil {
		b.Fatal(err)
	}
	b.Run("keelson", func(b *testing.B) {
		for b.Loop() {
			var p corev1.Pod
			if err := s.Get(ctx, "default", "web", &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("etcd", func(b *testing.B) {
		key := s.Prefix() + "/pods/default/web"
		for b.Loop() {
			resp, err := s.Client().Get(ctx, key)
			if err != nil || len(resp.Kvs) != 1 {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkList10k lists 10,000 pods; keelson's figure includes decoding every
// one into a typed object, etcd's is the range read of the same keys.
func BenchmarkList10k(b *testing.B) {
	s := etcdtest.NewStore(b)
	ctx := context.Background()
	const n = 10000
	for start := 0; start < n; start += 1000 {
		var ops []store.Op
		for i := start; i < start+1000; i++ {
			ops = append(ops, store.CreateOp(benchPod(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("p-%05d", i))))
		}
		if err := s.Txn(ctx, ops...); err != nil {
			b.Fatal(err)
		}
	}
	pods, _ := store.ResourceByName("pods")
	prefix := s.Prefix()
	// keelson and keelson-shared are the steady state: objects unchanged since
	// the last list come from the decode cache. keelson-cold decodes them all.
	if _, err := s.List(ctx, pods, store.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Run("keelson", func(b *testing.B) {
		for b.Loop() {
			l, err := s.List(ctx, pods, store.ListOptions{})
			if err != nil || len(l.Items) != n {
				b.Fatalf("%v, %d items", err, len(l.Items))
			}
		}
	})
	b.Run("keelson-shared", func(b *testing.B) {
		for b.Loop() {
			l, err := s.List(ctx, pods, store.ListOptions{Shared: true})
			if err != nil || len(l.Items) != n {
				b.Fatalf("%v, %d items", err, len(l.Items))
			}
		}
	})
	b.Run("keelson-cold", func(b *testing.B) {
		// Every object changed since the last list: each one is decoded anew.
		for b.Loop() {
			b.StopTimer()
			fresh := store.New(s.Client(), prefix, nil) // an empty decode cache
			b.StartTimer()
			l, err := fresh.List(ctx, pods, store.ListOptions{})
			if err != nil || len(l.Items) != n {
				b.Fatalf("%v, %d items", err, len(l.Items))
			}
		}
	})
	b.Run("etcd", func(b *testing.B) {
		for b.Loop() {
			resp, err := s.Client().Get(ctx, prefix+"/pods/", clientv3.WithPrefix())
			if err != nil || len(resp.Kvs) != n {
				b.Fatalf("%v, %d kvs", err, len(resp.Kvs))
			}
		}
	})
}

// BenchmarkWatchLatency is the time from a write's commit to its event
// reaching the watcher, one write in flight at a time: each iteration writes
// and waits for the event; the µs-commit-to-event metric counts from the
// moment etcd acknowledged the write.
func BenchmarkWatchLatency(b *testing.B) {
	s := etcdtest.NewStore(b)
	ctx := context.Background()
	p := benchPod("default", "web")
	if err := s.Create(ctx, p); err != nil {
		b.Fatal(err)
	}
	pods, _ := store.ResourceByName("pods")
	key := s.Prefix() + "/pods/default/web"
	v := rawValue(b, "default", "web")
	measure := func(b *testing.B, next func()) {
		var total time.Duration
		for b.Loop() {
			if _, err := s.Client().Put(ctx, key, string(v)); err != nil {
				b.Fatal(err)
			}
			committed := time.Now()
			next()
			total += time.Since(committed)
		}
		b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-commit-to-event")
	}
	b.Run("keelson", func(b *testing.B) {
		w, err := s.Watch(ctx, pods, store.WatchOptions{Namespace: "default"})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Stop()
		measure(b, func() {
			if ev := <-w.ResultChan(); ev.Type != watch.Modified {
				b.Fatalf("event %s", ev.Type)
			}
		})
	})
	b.Run("etcd", func(b *testing.B) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wch := s.Client().Watch(wctx, s.Prefix()+"/pods/default/", clientv3.WithPrefix(), clientv3.WithPrevKV())
		measure(b, func() {
			if resp := <-wch; len(resp.Events) != 1 {
				b.Fatalf("%d events", len(resp.Events))
			}
		})
	})
}
