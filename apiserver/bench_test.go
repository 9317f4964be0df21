package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/internal/satoken"
	"github.com/keelson/keelson/store"
)

// Benchmarks run the API and the raw etcd client side by side on the same
// embedded etcd and the same keys, in the same run, and report p50/p99.

// benchPod is a scheduled, running pod of realistic size (about 1.5 KB).
func benchPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels:      map[string]string{"app": "web", "pod-template-hash": "7d9c5b8f6", "tier": "frontend"},
			Annotations: map[string]string{"keelson.dev/revision": "3f2a1c9e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9c5b8f6", UID: "2b1f3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
			}},
		},
		Spec: corev1.PodSpec{
			NodeName: "node-1",
			Containers: []corev1.Container{{
				Name: "web", Image: "localhost/busybox:latest",
				Command: []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
				Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env:     []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "LOG_LEVEL", Value: "info"}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
			}},
			RestartPolicy: corev1.RestartPolicyAlways,
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.42.0.17", HostIP: "192.168.1.10",
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "web", Ready: true, Image: "localhost/busybox:latest", ImageID: "sha256:4b5c8e2f"}},
		},
	}
}

// percentiles reports p50 and p99 of ds in milliseconds.
func percentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

func fill(b *testing.B, st *store.Store, n int) {
	ctx := context.Background()
	for i := 0; i < n; i += 500 {
		var ops []store.Op
		for j := i; j < min(i+500, n); j++ {
			ops = append(ops, store.CreateOp(benchPod(fmt.Sprintf("ns-%d", j%10), fmt.Sprintf("web-%05d", j))))
		}
		if err := st.Txn(ctx, ops...); err != nil {
			b.Fatal(err)
		}
	}
}

func get(b *testing.B, url string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n == 0 {
		b.Fatalf("GET %s: %s", url, resp.Status)
	}
}

// BenchmarkList10kPods lists 10,000 pods cluster-wide: through the API (a
// consistent list, served from the watch cache once etcd confirms it is
// current; and with resourceVersion=0), against a raw etcd range read of the
// same keys in the same run. The API's time includes HTTP and the whole JSON
// body; the raw read's includes gRPC and the values.
func BenchmarkList10kPods(b *testing.B) {
	ts := newTestServer(b)
	fill(b, ts.st, 10000)
	url := ts.url + "/api/v1/pods"
	get(b, url) // start the watch cache
	prefix := ts.st.Prefix() + "/pods/"
	cli := ts.st.Client()
	variants := []struct {
		name string
		op   func()
	}{
		{"api-consistent", func() { get(b, url) }},
		{"api-rv0", func() { get(b, url+"?resourceVersion=0") }},
		{"raw-etcd-range", func() {
			resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix())
			if err != nil || len(resp.Kvs) != 10000 {
				b.Fatalf("range: %v, %d keys", err, len(resp.Kvs))
			}
		}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				v.op()
				ds = append(ds, time.Since(start))
			}
			percentiles(b, ds)
		})
	}
}

// BenchmarkGetPod reads one pod through the API (a quorum read of etcd)
// against a raw etcd get of the same key.
func BenchmarkGetPod(b *testing.B) {
	ts := newTestServer(b)
	fill(b, ts.st, 10)
	url := ts.url + "/api/v1/namespaces/ns-1/pods/web-00001"
	key := ts.st.Prefix() + "/pods/ns-1/web-00001"
	cli := ts.st.Client()
	for _, v := range []struct {
		name string
		op   func()
	}{
		{"api", func() { get(b, url) }},
		{"raw-etcd-get", func() {
			if _, err := cli.Get(context.Background(), key); err != nil {
				b.Fatal(err)
			}
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				v.op()
				ds = append(ds, time.Since(start))
			}
			percentiles(b, ds)
		})
	}
}

// BenchmarkWatchFanout100 has 100 HTTP watchers of pods; each iteration writes
// one pod and waits until every watcher has its event. The delay is from just
// before the write to etcd to the event's arrival at each watcher; p50/p99
// are over all watchers and writes. raw-etcd is 100 etcd watches on the same
// client, for comparison.
func BenchmarkWatchFanout100(b *testing.B) {
	const watchers = 100
	b.Run("api", func(b *testing.B) {
		ts := newTestServer(b, func(c *apiserver.Config) { c.WatchCache.WatcherBuffer = 4096 })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		url := ts.url + "/api/v1/namespaces/bench/pods?watch=true&resourceVersion=0"
		arrivals := make(chan arrival, watchers*64)
		var wg sync.WaitGroup
		for range watchers {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer admin-token")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				for sc.Scan() {
					var ev struct {
						Object struct {
							Metadata metav1.ObjectMeta `json:"metadata"`
						} `json:"object"`
					}
					if json.Unmarshal(sc.Bytes(), &ev) == nil {
						arrivals <- arrival{ev.Object.Metadata.Name, time.Now()}
					}
				}
			}()
		}
		fanout(b, watchers, arrivals, func(name string) {
			if err := ts.st.Create(context.Background(), benchPod("bench", name)); err != nil {
				b.Fatal(err)
			}
		})
		cancel()
		wg.Wait()
	})
	b.Run("raw-etcd", func(b *testing.B) {
		ts := newTestServer(b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cli := ts.st.Client()
		prefix := ts.st.Prefix() + "/pods/bench/"
		arrivals := make(chan arrival, watchers*64)
		var wg sync.WaitGroup
		for range watchers {
			wch := cli.Watch(ctx, prefix, clientv3.WithPrefix())
			wg.Add(1)
			go func() {
				defer wg.Done()
				for resp := range wch {
					for _, ev := range resp.Events {
						arrivals <- arrival{string(ev.Kv.Key[len(prefix):]), time.Now()}
					}
				}
			}()
		}
		time.Sleep(100 * time.Millisecond) // let the watches register
		fanout(b, watchers, arrivals, func(name string) {
			if err := ts.st.Create(context.Background(), benchPod("bench", name)); err != nil {
				b.Fatal(err)
			}
		})
		cancel()
		wg.Wait()
	})
}

type arrival struct {
	name string
	at   time.Time
}

func fanout(b *testing.B, watchers int, arrivals chan arrival, write func(name string)) {
	var ds []time.Duration
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("p-%06d", i)
		i++
		start := time.Now()
		write(name)
		for got := 0; got < watchers; {
			select {
			case a := <-arrivals:
				if a.name == name {
					ds = append(ds, a.at.Sub(start))
					got++
				}
			case <-time.After(30 * time.Second):
				b.Fatalf("%d of %d watchers got %s", got, watchers, name)
			}
		}
	}
	percentiles(b, ds)
}

// BenchmarkAuthenticatedGet reads one pod from the watch cache
// (resourceVersion=0) with a static token of the token file, and with a
// pod's ServiceAccount token whose reads RBAC allows (a RoleBinding of
// view): verified once and remembered, or verified on every request
// (ECDSA). The pod and the ServiceAccount are looked up on every request
// either way.
func BenchmarkAuthenticatedGet(b *testing.B) {
	var log syncBuffer
	opt, key := withServiceAccounts(b, &log)
	ts := newTestServer(b, opt)
	ctx := context.Background()
	fill(b, ts.st, 10)
	p := &corev1.Pod{}
	if err := ts.st.Get(ctx, "ns-1", "web-00001", p); err != nil {
		b.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns-1", Name: "default"}}
	if err := ts.st.Create(ctx, sa); err != nil {
		b.Fatal(err)
	}
	if err := ts.st.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns-1", Name: "view"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default"}}}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	token, err := satoken.NewSigner(key, testIssuer).Sign(satoken.Claims{Issuer: testIssuer, Audiences: []string{testIssuer},
		Namespace: "ns-1", ServiceAccount: "default", ServiceAccountUID: string(sa.UID), Pod: p.Name, PodUID: string(p.UID),
		IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	url := ts.url + "/api/v1/namespaces/ns-1/pods/web-00001?resourceVersion=0"
	getAs := func(token string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s\n%s", url, resp.Status, log.String())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for { // the RBAC and object caches catch up with the writes above
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the ServiceAccount cannot read the pod: %v\n%s", err, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, v := range []struct {
		name     string
		token    string
		remember bool
	}{
		{"static-token", "admin-token", true},
		{"serviceaccount-token", token, true},
		{"serviceaccount-token-verified-each-time", token, false},
	} {
		b.Run(v.name, func(b *testing.B) {
			apiserver.RememberVerifiedTokens(ts.srv, v.remember)
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				getAs(v.token)
				ds = append(ds, time.Since(start))
			}
			percentiles(b, ds)
		})
	}
}
