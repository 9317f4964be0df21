package cluster_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/test/cluster"
)

// envInt reads a size from the environment, for running the benchmark
// smaller than its issue's figures.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// BenchmarkHollowScale is Kubernetes' scale threshold on this machine: a
// server on an etcd member, KEELSON_SCALE_NODES simulated nodes (default
// 5,000) renewing their leases, and one commit of KEELSON_SCALE_PODS pods
// (default 150,000) as Deployments of 100. It reports how fast the pods were
// scheduled and reported Running (from the pods' own timestamps, so nothing
// polls the server while it works), the server's resident memory, and,
// once they run, the API's latencies with every node's lease traffic going
// on: single-object reads, lease updates (mutations), a watch's delivery,
// and unpaginated cluster-wide lists of every pod. With
// KEELSON_SCALE_PROFILE=DIR it saves the server's CPU profile of 30 s
// once the commit is applied, and its heap once every pod runs, in DIR.
func BenchmarkHollowScale(b *testing.B) {
	nodes := envInt(b, "KEELSON_SCALE_NODES", 5000)
	pods := envInt(b, "KEELSON_SCALE_PODS", 150000)
	const perDeployment = 100
	deployments := max(1, pods/perDeployment)
	pods = deployments * perDeployment
	for b.Loop() {
		r := newRepo(b)
		cl := cluster.New(b, cluster.Config{Hosts: 1, Etcd: 1, Servers: 1, Hollow: nodes,
			Binary: binary, Repo: r.dir, Path: "deploy",
			ServerArgs: []string{"--cluster-cidr", "10.0.0.0/8"}})
		host := cl.Hosts[0]
		cfg := cl.RESTConfig(host)
		cfg.Timeout = 5 * time.Minute // a list of every pod takes a while
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			b.Fatal(err)
		}
		rssBefore := rssMB(b, host.Server.Pid())
		prof := newProfiler(b, cfg)

		start := time.Now()
		rev := r.commit(b, "deploy/app.yaml", hollowApp(deployments, perDeployment), "the load")
		waitApplied(b, cl, rev, 10*time.Minute)
		applied := time.Now()
		profiled := prof.cpu(b, "cpu-while-scheduling.pprof", 30*time.Second)
		cluster.Eventually(b, 60*time.Minute, fmt.Sprintf("%d pods Ready", pods), func() (string, bool) {
			ready, err := readyReplicas(b, c)
			if err != nil {
				return err.Error(), false
			}
			return fmt.Sprintf("%d Ready", ready), ready == pods
		})
		running := time.Now()
		profiled()
		prof.heap(b, "heap-all-running.pprof")
		b.Logf("%d nodes, %d pods: commit → applied %s, → all Running %s", nodes, pods, applied.Sub(start).Round(time.Millisecond), running.Sub(start).Round(time.Second))
		rss := rssMB(b, host.Server.Pid())

		created, scheduled, ready := podTimes(b, c)
		b.ReportMetric(float64(pods), "pods")
		b.ReportMetric(float64(nodes), "nodes")
		b.ReportMetric(running.Sub(start).Seconds(), "commit-to-all-running-s")
		b.ReportMetric(rate(created), "created-pods/s")
		b.ReportMetric(rate(scheduled), "scheduled-pods/s")
		b.ReportMetric(rate(ready), "running-pods/s")
		b.ReportMetric(rss, "MB-rss")
		b.ReportMetric((rss-rssBefore)/(float64(pods)/10000), "MB-rss-per-10k-pods")

		lat := apiLatencies(b, cl, c)
		for _, k := range []string{"get", "mutate", "watch"} {
			b.ReportMetric(lat[k], k+"-p99-ms")
		}
		b.ReportMetric(lat["list"], "list-slowest-ms")
		b.ReportMetric(lat["list-decoded"], "list-decoded-slowest-ms")
	}
	b.ReportMetric(0, "ns/op")
}

func readyReplicas(b *testing.B, c kubernetes.Interface) (int, error) {
	ds, err := c.AppsV1().Deployments("scale").List(b.Context(), metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range ds.Items {
		n += int(d.Status.ReadyReplicas)
	}
	return n, nil
}

// podTimes returns, from every pod of namespace scale, when it was created,
// bound (PodScheduled) and Ready, each sorted.
func podTimes(b *testing.B, c kubernetes.Interface) (created, scheduled, ready []time.Time) {
	list, err := c.CoreV1().Pods("scale").List(b.Context(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range list.Items {
		created = append(created, p.CreationTimestamp.Time)
		for _, cond := range p.Status.Conditions {
			switch cond.Type {
			case corev1.PodScheduled:
				scheduled = append(scheduled, cond.LastTransitionTime.Time)
			case corev1.PodReady:
				ready = append(ready, cond.LastTransitionTime.Time)
			}
		}
	}
	for _, ts := range [][]time.Time{created, scheduled, ready} {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	}
	return created, scheduled, ready
}

// rate is events per second between the first and last of ts (whole
// seconds: the API's timestamps have no finer grain).
func rate(ts []time.Time) float64 {
	if len(ts) < 2 {
		return 0
	}
	span := ts[len(ts)-1].Sub(ts[0]).Seconds() + 1
	return float64(len(ts)) / span
}

// rssMB is the resident memory of process pid, in MB.
func rssMB(b *testing.B, pid int) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// apiLatencies measures the API under the nodes' lease traffic: p99 of
// 200 single-pod gets, of 200 lease updates by a node (h1's) and of their
// delivery to a watch, and the slowest of 3 unpaginated lists of every pod
// of the cluster, to the last byte of the answer ("list") and read and
// decoded by client-go ("list-decoded"); in ms.
func apiLatencies(b *testing.B, cl *cluster.Cluster, c kubernetes.Interface) map[string]float64 {
	ctx := b.Context()
	p99 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[int(0.99*float64(len(ds)-1))].Microseconds()) / 1000
	}
	out := map[string]float64{}
	some, err := c.CoreV1().Pods("scale").List(ctx, metav1.ListOptions{Limit: 200})
	if err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for _, p := range some.Items {
		t := time.Now()
		if _, err := c.CoreV1().Pods("scale").Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t))
	}
	out["get"] = p99(ds)

	node := cl.NodeClient(b, cl.Hosts[0], "h1")
	leases := node.CoordinationV1().Leases("kube-node-lease")
	lease, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "h1", Namespace: "kube-node-lease"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("h1")}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		lease, err = leases.Get(ctx, "h1", metav1.GetOptions{})
	}
	if err != nil {
		b.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := c.CoordinationV1().Leases("kube-node-lease").Watch(wctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", "h1").String(), ResourceVersion: lease.ResourceVersion})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var mutate, delivered []time.Duration
	for range 200 {
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.RenewTime = &now
		t := time.Now()
		if lease, err = leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		mutate = append(mutate, time.Since(t))
		for ev := range w.ResultChan() {
			if l, ok := ev.Object.(*coordinationv1.Lease); ok && l.ResourceVersion == lease.ResourceVersion {
				delivered = append(delivered, time.Since(t))
				break
			}
		}
	}
	out["mutate"], out["watch"] = p99(mutate), p99(delivered)

	// Kubernetes' SLI of a list runs from the request to the last byte of
	// the answer; decoding it is the client's own time, reported apart.
	var decoded []time.Duration
	ds = ds[:0]
	for range 3 {
		t := time.Now()
		body, err := c.CoreV1().RESTClient().Get().Resource("pods").Stream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, body)
		body.Close()
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t))
		t = time.Now()
		list, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		decoded = append(decoded, time.Since(t))
		b.Logf("cluster-wide list of %d pods: %s to the last of %d MB; %s read and decoded by client-go",
			len(list.Items), ds[len(ds)-1].Round(time.Millisecond), n>>20, decoded[len(decoded)-1].Round(time.Millisecond))
	}
	slowest := func(ds []time.Duration) float64 { return float64(slices.Max(ds).Microseconds()) / 1000 }
	out["list"], out["list-decoded"] = slowest(ds), slowest(decoded)
	return out
}
