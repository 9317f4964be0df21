package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/store"
)

// maxPods is the Kubernetes default of pods a node runs, which a keelson
// node announces too.
const maxPods = 110

// startPods writes count sleeper pods bound to the node and waits until
// all run; it returns their names.
func startPods(t testing.TB, n *node, prefix string, count int, tune ...func(*corev1.Pod)) []string {
	t.Helper()
	running, stop := runningWatch(t, n.store)
	defer stop()
	var names []string
	for i := range count {
		name := fmt.Sprintf("%s-%d", prefix, i)
		names = append(names, name)
		p := sleeperPod(name)
		for _, f := range tune {
			f(p)
		}
		if err := n.store.Create(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	timeout := time.After(5 * time.Minute) // a bound for a hang, not a measure
	for len(seen) < count {
		select {
		case name := <-running:
			if slices.Contains(names, name) {
				seen[name] = true
			}
		case <-timeout:
			t.Fatalf("%d of %d pods running after 5 minutes", len(seen), count)
		}
	}
	return names
}

// TestFullNode runs 110 pods on one node on real containerd: all run, and
// then the node is at rest: across two resyncs no pod's status is written
// again, and every pod is looked at (containerd is asked about it).
func TestFullNode(t *testing.T) {
	n := startNode(t, "node-1", "10.99.19.0/24", withResync(time.Second))
	startPods(t, n, "full", maxPods)
	versions := podVersions(t, n)
	calls := n.calls.Load()
	time.Sleep(2500 * time.Millisecond) // two resyncs of a second
	if after := podVersions(t, n); !maps.Equal(versions, after) {
		t.Errorf("pods at rest had their status written again: %d of %d changed", changed(versions, after), len(after))
	}
	// Each resync of a pod asks containerd for the pod's containers at least once.
	if got := n.calls.Load() - calls; got < 2*maxPods {
		t.Errorf("%d containerd calls in two resyncs of %d pods: the pods were not looked at", got, maxPods)
	}
	var node corev1.Node
	if err := n.store.Get(context.Background(), "", "node-1", &node); err != nil {
		t.Fatal(err)
	}
	if c := nodeCondition(&node, corev1.NodeReady); c.Status != corev1.ConditionTrue {
		t.Errorf("a full node is not Ready: %+v", c)
	}
}

func podVersions(t testing.TB, n *node) map[string]string {
	t.Helper()
	pods, _ := store.ResourceByName("pods")
	list, err := n.store.List(context.Background(), pods, store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		out[p.GetName()] = p.GetResourceVersion()
	}
	return out
}

func changed(a, b map[string]string) int {
	n := 0
	for k, v := range b {
		if a[k] != v {
			n++
		}
	}
	return n
}

// BenchmarkAgentSteadyState runs 10, then 110 pods on a node with the
// agent's default periods and measures it at rest over 20 s: the CPU the
// test process uses, in % of one core (the agent with the API server and
// etcd that serve it in the same process: a bound on the agent's own), and
// the requests the agent makes to containerd, per minute and pod.
func BenchmarkAgentSteadyState(b *testing.B) {
	for i, count := range []int{10, maxPods} {
		b.Run(fmt.Sprintf("pods/%d", count), func(b *testing.B) {
			n := startNode(b, "node-1", fmt.Sprintf("10.99.%d.0/24", 20+i), func(c *agent.Config) {
				c.Resync, c.StatsInterval, c.LeaseDuration = 0, 0, 0 // the defaults
			})
			// Every pod mounts a ConfigMap, as every pod of a cluster mounts
			// kube-root-ca.crt through its kube-api-access volume.
			ca := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kube-root-ca.crt"},
				Data: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\n"}}
			if err := n.store.Create(b.Context(), ca); err != nil {
				b.Fatal(err)
			}
			startPods(b, n, "steady", count, func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "ca", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: ca.Name}}}}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "ca", MountPath: "/etc/ca"}}
			})
			time.Sleep(15 * time.Second) // the start's writes and first resyncs pass
			var cpu, calls, asked []float64
			for b.Loop() {
				c0, a0, u0, t0 := n.calls.Load(), n.api.total(), cpuTime(b), time.Now()
				time.Sleep(20 * time.Second)
				d := time.Since(t0)
				cpu = append(cpu, 100*float64(cpuTime(b)-u0)/float64(d))
				calls = append(calls, float64(n.calls.Load()-c0)/d.Minutes()/float64(count))
				asked = append(asked, float64(n.api.total()-a0)/d.Minutes()/float64(count))
			}
			slices.Sort(cpu)
			slices.Sort(calls)
			slices.Sort(asked)
			b.ReportMetric(cpu[len(cpu)/2], "cpu-%")
			b.ReportMetric(calls[len(calls)/2], "calls/min/pod")
			b.ReportMetric(asked[len(asked)/2], "api-req/min/pod")
		})
	}
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func withResync(d time.Duration) func(*agent.Config) { return func(c *agent.Config) { c.Resync = d } }
