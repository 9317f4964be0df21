package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/proxy"
	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/reconciler"
	"github.com/keelson/keelson/store"
)

// What each transfer of BenchmarkServiceThroughput moves: tpBlocks blocks
// of 1 MiB.
const (
	tpBlocks = 1024
	tpBytes  = tpBlocks << 20
	tpPairs  = 6 // transfer pairs a client pod makes
)

// tpServerCommand serves tpBytes of zeros to each connection. nc only
// accepts: with -e it hands the socket to dd, which writes it in 1 MiB
// calls, so that busybox's own copy loop (nc's, ~200 MB/s here) is not what
// is measured.
var tpServerCommand = []string{"nc", "-ll", "-p", "8080", "-e", "dd", "if=/dev/zero", "bs=1M", "count=" + strconv.Itoa(tpBlocks)}

// tpClientScript fetches the server's bytes by the pod IP and by the
// service's cluster IP, in pairs whose order alternates (A B, B A, ...) so
// that a drift of the machine's load weighs on both alike. Its nc, too,
// hands the socket to dd, which reads it in 1 MiB calls. The bytes flow from
// server to client so that the client's clock stops at the last byte's
// arrival (end of stream); a sender's clock would stop when its last write
// went into its socket buffer, megabytes early. Each line it logs
// is a transfer: its path, dd's count of full 1 MiB blocks read (the check
// that every byte came), and the microseconds it took by the pod's own
// clock (adjtimex reads the time to the microsecond; busybox's date does
// not). The first transfer of each path, which also waits for the service's
// rules to be in place, is not counted.
const tpClientScript = `
now() { adjtimex | awk '/tv_sec/{s=$2} /tv_usec/{u=$2} END{print s*1000000+u}'; }
fetch() {
  rm -f /tmp/dd
  t0=$(now)
  nc "$2" "$3" -e dd of=/dev/null bs=1M iflag=fullblock 2>/tmp/dd
  t1=$(now)
  echo "$1 $(head -n1 /tmp/dd 2>/dev/null | cut -d' ' -f1) $((t1-t0))"
}
tries=0
until fetch warmup-clusterip "$CLUSTER_IP" 80 | grep -q " $BLOCKS+0 "; do
  tries=$((tries+1)); [ $tries -ge 100 ] && { echo "the cluster IP never answered"; exit 1; }
  sleep 0.2
done
fetch warmup-podip "$POD_IP" 8080
i=0
while [ $i -lt $PAIRS ]; do
  if [ $((i%2)) = 0 ]; then
    fetch podip "$POD_IP" 8080; fetch clusterip "$CLUSTER_IP" 80
  else
    fetch clusterip "$CLUSTER_IP" 80; fetch podip "$POD_IP" 8080
  fi
  i=$((i+1))
done
echo end
`

// BenchmarkServiceThroughput is issue 15's "throughput through a ClusterIP
// ≥ 0.9× direct pod IP, same run": a server pod and a client pod on real
// containerd, run by the agent with its node proxy on (a table of the
// benchmark's own, removed after), a Service in front of the server. Each
// iteration runs a client pod that moves 1 GiB from the server by the pod IP
// and by the cluster IP, tpPairs times each, alternating, and logs its own
// timings, which are read from its log through the API. It reports the
// median MB/s (10⁶ bytes) of each path and the median of the pairs' ratios,
// cluster IP over pod IP.
func BenchmarkServiceThroughput(b *testing.B) {
	table := fmt.Sprintf("kb%d", os.Getpid()%100000)
	b.Cleanup(func() {
		if err := proxy.Cleanup("", table); err != nil {
			b.Errorf("remove the benchmark's nftables table: %v", err)
		}
	})
	n := startNode(b, "node-1", "10.99.17.0/24", func(c *agent.Config) {
		c.ServiceProxy, c.ProxyTable, c.Masquerade = true, table, true
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := reconciler.Run(ctx, n.store, quietLogger(), reconciler.Options{
			LeaderElection: reconciler.LeaderElection{Disabled: true},
			// A range of its own: other tests' node proxies share this
			// machine's network namespace.
			Services: reconciler.ServiceOptions{CIDR: fmt.Sprintf("10.%d.0.0/16", 150+os.Getpid()%50)},
		})
		if err != nil && ctx.Err() == nil {
			b.Errorf("controllers: %v", err)
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
	podIP, clusterIP := startTputServer(b, n)

	var pod, cluster, ratio []float64
	for i := 0; b.Loop(); i++ {
		p, c, r := runTputClient(b, n, fmt.Sprintf("tp-client-%d", i), podIP, clusterIP)
		pod, cluster, ratio = append(pod, p...), append(cluster, c...), append(ratio, r...)
	}
	b.ReportMetric(medianOf(pod), "podip-MBps")
	b.ReportMetric(medianOf(cluster), "clusterip-MBps")
	b.ReportMetric(medianOf(ratio), "ratio")
}

// startTputServer runs the server pod and its Service and returns the pod's
// IP and the service's cluster IP.
func startTputServer(b *testing.B, n *node) (podIP, clusterIP string) {
	ctx := b.Context()
	server := sleeperPod("tp-server")
	server.Labels = map[string]string{"app": "tp-server"}
	server.Spec.Containers[0].Command = tpServerCommand
	server.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "data", ContainerPort: 8080}}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tp-server"},
		Spec: corev1.ServiceSpec{Selector: server.Labels, Ports: []corev1.ServicePort{{
			Name: "data", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("data")}}},
	}
	for _, o := range []store.Object{server, svc} {
		if err := n.store.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	waitRunning(b, n, "tp-server")
	eventually(b, "the server's IP and the service's cluster IP", func() string {
		var p corev1.Pod
		var s corev1.Service
		if err := n.store.Get(ctx, "default", "tp-server", &p); err != nil {
			return err.Error()
		}
		if err := n.store.Get(ctx, "default", "tp-server", &s); err != nil {
			return err.Error()
		}
		podIP, clusterIP = p.Status.PodIP, s.Spec.ClusterIP
		if podIP == "" || clusterIP == "" {
			return fmt.Sprintf("pod IP %q, cluster IP %q", podIP, clusterIP)
		}
		return ""
	})
	return podIP, clusterIP
}

// runTputClient runs one client pod to its end and returns, from its log,
// the MB/s of each counted transfer by path and each pair's ratio.
func runTputClient(b *testing.B, n *node, name, podIP, clusterIP string) (pod, cluster, ratio []float64) {
	c := sleeperPod(name)
	c.Spec.RestartPolicy = corev1.RestartPolicyNever
	c.Spec.Containers[0].Command = []string{"sh", "-c", tpClientScript}
	c.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "POD_IP", Value: podIP}, {Name: "CLUSTER_IP", Value: clusterIP},
		{Name: "BLOCKS", Value: strconv.Itoa(tpBlocks)}, {Name: "PAIRS", Value: strconv.Itoa(tpPairs)},
	}
	if err := n.store.Create(b.Context(), c); err != nil {
		b.Fatal(err)
	}
	log := finishedLog(b, n, name)
	pod, cluster, ratio, err := parseTputLog(log, tpPairs)
	if err != nil {
		b.Fatalf("client pod %s: %v; its log:\n%s", name, err, log)
	}
	b.Logf("%s: MB/s by pod IP %.0f, by cluster IP %.0f; ratios %.2f", name, pod, cluster, ratio)
	b.StopTimer()
	removePod(b, n, name)
	b.StartTimer()
	return pod, cluster, ratio
}

// finishedLog waits for the pod to end and returns its log, which must end
// with the line "end".
func finishedLog(b *testing.B, n *node, name string) string {
	ctx := b.Context()
	deadline := time.Now().Add(5 * time.Minute)
	var p corev1.Pod
	for p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		if time.Now().After(deadline) {
			b.Fatalf("pod %s still %s after 5 minutes", name, p.Status.Phase)
		}
		time.Sleep(100 * time.Millisecond)
		if err := n.store.Get(ctx, "default", name, &p); err != nil {
			b.Fatal(err)
		}
	}
	// The log may trail the pod's end a moment: it is whole once it holds
	// the script's last line.
	var log string
	eventually(b, "the whole log of "+name, func() string {
		raw, err := n.admin.CoreV1().Pods("default").GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return err.Error()
		}
		log = string(raw)
		if !strings.HasSuffix(log, "\nend\n") {
			return fmt.Sprintf("pod %s, its log so far:\n%s", p.Status.Phase, log)
		}
		return ""
	})
	return log
}

// removePod deletes a pod that has ended and waits for its container to
// leave the node.
func removePod(b *testing.B, n *node, name string) {
	ctx := b.Context()
	pods, _ := store.ResourceByName("pods")
	if err := n.store.Delete(ctx, pods, "default", name, nil); err != nil {
		b.Fatal(err)
	}
	eventually(b, name+" gone", func() string {
		cs, err := n.rt.List(ctx)
		if err != nil {
			return err.Error()
		}
		if slices.ContainsFunc(cs, func(c runtime.Container) bool { return c.Spec.PodName == name }) {
			return "its container is still on the node"
		}
		return ""
	})
}

// parseTputLog reads a client's log: pairs × 2 counted transfers after the
// warm-up ones, each "<path> <full blocks> <µs>". Every transfer must have
// read every block.
func parseTputLog(log string, pairs int) (pod, cluster, ratio []float64, err error) {
	var last = map[string]float64{}
	for line := range strings.Lines(log) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "end" || strings.HasPrefix(f[0], "warmup-") {
			continue
		}
		if len(f) != 3 || (f[0] != "podip" && f[0] != "clusterip") {
			return nil, nil, nil, fmt.Errorf("unexpected line %q", strings.TrimSpace(line))
		}
		if f[1] != strconv.Itoa(tpBlocks)+"+0" {
			return nil, nil, nil, fmt.Errorf("%s: read %q blocks of 1 MiB, want %d", f[0], f[1], tpBlocks)
		}
		us, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || us <= 0 {
			return nil, nil, nil, fmt.Errorf("%s: duration %q µs", f[0], f[2])
		}
		mbps := float64(tpBytes) / float64(us) // bytes per µs is MB/s
		if f[0] == "podip" {
			pod = append(pod, mbps)
		} else {
			cluster = append(cluster, mbps)
		}
		last[f[0]] = mbps
		if len(pod) == len(cluster) {
			ratio = append(ratio, last["clusterip"]/last["podip"])
		}
	}
	if len(ratio) != pairs {
		return nil, nil, nil, fmt.Errorf("%d complete pairs of transfers, want %d", len(ratio), pairs)
	}
	return pod, cluster, ratio, nil
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
