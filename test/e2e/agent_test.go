package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

func TestAgentRunsBoundPods(t *testing.T) {
	n := startNode(t, "node-1", "10.99.9.0/24")
	ctx := t.Context()

	eventually(t, "node registers", func() string {
		var node corev1.Node
		if err := n.store.Get(ctx, "", "node-1", &node); err != nil {
			return err.Error()
		}
		ready := false
		for _, c := range node.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		if !ready || node.Status.Capacity.Cpu().IsZero() || node.Status.Allocatable.Memory().IsZero() ||
			node.Spec.PodCIDR != "10.99.9.0/24" || !strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") {
			return fmt.Sprintf("node not complete yet: %+v", node.Status)
		}
		return ""
	})
	eventually(t, "lease renewed", func() string {
		var l coordinationv1.Lease
		if err := n.store.Get(ctx, "kube-node-lease", "node-1", &l); err != nil {
			return err.Error()
		}
		if l.Spec.RenewTime == nil || *l.Spec.HolderIdentity != "node-1" {
			return "lease without renew time"
		}
		return ""
	})

	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.PodSpec{NodeName: "node-1", RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{
			Name: "web", Image: ociarchive.BusyboxRef, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"httpd", "-f", "-p", "8080"},
		}}},
	}
	other := web.DeepCopy()
	other.Name, other.Spec.NodeName = "elsewhere", "node-2"
	for _, p := range []*corev1.Pod{web, other} {
		if err := n.store.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "pod runs", func() string {
		var p corev1.Pod
		if err := n.store.Get(ctx, "default", "web", &p); err != nil {
			return err.Error()
		}
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || len(p.Status.ContainerStatuses) != 1 || !p.Status.ContainerStatuses[0].Ready {
			return fmt.Sprintf("status %+v", p.Status)
		}
		return ""
	})
	cs, err := n.rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Spec.PodName != "web" {
		t.Fatalf("containers on node-1: %+v (the pod bound to node-2 must not run here)", cs)
	}

	// A pod that asks for more memory than the node has is rejected, not run.
	huge := web.DeepCopy()
	huge.Name, huge.ResourceVersion, huge.UID = "huge", "", ""
	huge.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Pi")}
	if err := n.store.Create(ctx, huge); err != nil {
		t.Fatal(err)
	}
	eventually(t, "oversized pod rejected", func() string {
		var p corev1.Pod
		if err := n.store.Get(ctx, "default", "huge", &p); err != nil {
			return err.Error()
		}
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "OutOfmemory" {
			return fmt.Sprintf("status %+v", p.Status)
		}
		return ""
	})

	// A graceful deletion: the agent stops the pod, then confirms by deleting it.
	var p corev1.Pod
	if err := n.store.Get(ctx, "default", "web", &p); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	grace := int64(1)
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, &grace
	if err := n.store.Update(ctx, &p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted pod leaves the API and the node", func() string {
		if err := n.store.Get(ctx, "default", "web", &corev1.Pod{}); err == nil {
			return "pod still in the store"
		}
		if cs, _ := n.rt.List(ctx); len(cs) != 0 {
			return fmt.Sprintf("%d containers still on the node", len(cs))
		}
		return ""
	})
}

func TestAgentRidesOutAnAPIOutage(t *testing.T) {
	n := startNode(t, "node-1", "10.99.11.0/24")
	ctx := t.Context()
	first := sleeperPod("before")
	if err := n.store.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, n, "before")
	cs, _ := n.rt.List(ctx)

	// Status is written only when something changed: ten resyncs of a
	// running pod leave it as it was.
	var before, after corev1.Pod
	if err := n.store.Get(ctx, "default", "before", &before); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := n.store.Get(ctx, "default", "before", &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("a steady pod's status was rewritten: resourceVersion %s → %s", before.ResourceVersion, after.ResourceVersion)
	}

	n.api.set(true)
	second := sleeperPod("during")
	if err := n.store.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	now, _ := n.rt.List(ctx)
	if len(now) != len(cs) || now[0].State != "running" || now[0].ID != cs[0].ID {
		t.Fatalf("while the API was down the node's containers changed: %+v → %+v", cs, now)
	}
	n.api.set(false)
	waitRunning(t, n, "during") // the agent catches up: sees the new pod, reports it
}

func TestAgentServesLogs(t *testing.T) {
	n := startNode(t, "node-1", "10.99.12.0/24")
	ctx := t.Context()
	p := sleeperPod("talker")
	p.Spec.Containers[0].Command = []string{"sh", "-c", "for i in 1 2 3; do echo line $i; done; echo oops >&2; exec sleep 3600"}
	if err := n.store.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, n, "talker")
	srv := httptest.NewServer(n.agent.Handler("node-token"))
	defer srv.Close()
	get := func(query, token string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/containerLogs/default/talker/main"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// stdout and stderr are two pipes read side by side, so "oops" may be
	// logged before or after the lines (as with the kubelet): the full log
	// holds all four, and a tail is its last lines.
	var full []string
	eventually(t, "logs", func() string {
		code, body := get("", "node-token")
		full = strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		sorted := slices.Sorted(slices.Values(full))
		if code != 200 || !slices.Equal(sorted, []string{"line 1", "line 2", "line 3", "oops"}) {
			return fmt.Sprintf("%d %q", code, body)
		}
		return ""
	})
	if code, body := get("?tailLines=2", "node-token"); code != 200 || body != full[2]+"\n"+full[3]+"\n" {
		t.Fatalf("tailLines=2 of %q: %d %q", full, code, body)
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Fatalf("logs without the node's token: %d", code)
	}
	if code, _ := get("", "another-token"); code != http.StatusUnauthorized {
		t.Fatalf("logs with a wrong token: %d", code)
	}
	if code, body := get("?previous=true", "node-token"); code != http.StatusBadRequest || !strings.Contains(body, "previous") {
		t.Fatalf("previous logs of a first run: %d %q", code, body)
	}
	if code, body := get("?timestamps=true&tailLines=1", "node-token"); code != 200 || !strings.HasSuffix(body, "Z "+full[3]+"\n") {
		t.Fatalf("timestamps: %d %q", code, body)
	}
}

func TestAgentReportsUsage(t *testing.T) {
	n := startNode(t, "node-1", "10.99.13.0/24")
	p := sleeperPod("burner")
	p.Spec.Containers[0].Command = []string{"sh", "-c", "while true; do :; done"}
	if err := n.store.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, n, "burner")
	srv := httptest.NewServer(n.agent.Handler("node-token"))
	defer srv.Close()
	eventually(t, "usage of the busy container", func() string {
		req, _ := http.NewRequest("GET", srv.URL+"/stats/summary", nil)
		req.Header.Set("Authorization", "Bearer node-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var s agent.Summary
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			return err.Error()
		}
		if s.Node.CPU == nil || s.Node.CPU.UsageNanoCores == nil || s.Node.Memory == nil || *s.Node.Memory.WorkingSetBytes == 0 {
			return fmt.Sprintf("node stats incomplete: %+v", s.Node)
		}
		for _, ps := range s.Pods {
			if ps.PodRef.Name != "burner" {
				continue
			}
			c := ps.Containers[0]
			// A busy loop uses most of a core: well over a tenth.
			if c.CPU != nil && c.CPU.UsageNanoCores != nil && *c.CPU.UsageNanoCores > 100_000_000 && c.Memory != nil && *c.Memory.WorkingSetBytes > 0 {
				return ""
			}
			return fmt.Sprintf("container stats %+v", c)
		}
		return "no stats for the pod yet"
	})

	// The same figures through the API's metrics.k8s.io, as kubectl top reads them.
	mc, err := metricsclient.NewForConfig(&rest.Config{Host: n.apiURL, BearerToken: "admin-token",
		ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod and node metrics through the API", func() string {
		pm, err := mc.MetricsV1beta1().PodMetricses("default").Get(t.Context(), "burner", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if len(pm.Containers) != 1 || pm.Containers[0].Usage.Cpu().MilliValue() < 100 || pm.Containers[0].Usage.Memory().IsZero() {
			return fmt.Sprintf("pod metrics %+v", pm.Containers)
		}
		nm, err := mc.MetricsV1beta1().NodeMetricses().List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		if len(nm.Items) != 1 || nm.Items[0].Name != "node-1" || nm.Items[0].Usage.Cpu().IsZero() {
			return fmt.Sprintf("node metrics %+v", nm.Items)
		}
		return ""
	})
}

// TestLogsThroughTheAPI is kubectl logs' path: client-go asks the API server,
// which proxies to the agent of the pod's node.
func TestLogsThroughTheAPI(t *testing.T) {
	n := startNode(t, "node-1", "10.99.14.0/24")
	p := sleeperPod("chatty")
	p.Spec.Containers[0].Command = []string{"sh", "-c", "echo first; echo second; exec sleep 3600"}
	if err := n.store.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, n, "chatty")
	eventually(t, "logs through the API", func() string {
		b, err := n.admin.CoreV1().Pods("default").GetLogs("chatty", &corev1.PodLogOptions{TailLines: ptr.To[int64](1)}).DoRaw(t.Context())
		if err != nil {
			return err.Error()
		}
		if string(b) != "second\n" {
			return fmt.Sprintf("got %q", b)
		}
		return ""
	})
	_, err := n.admin.CoreV1().Pods("default").GetLogs("chatty", &corev1.PodLogOptions{Container: "nope"}).Stream(t.Context())
	if err == nil || !strings.Contains(err.Error(), "container nope is not valid for pod chatty") {
		t.Fatalf("logs of a container the pod lacks: %v", err)
	}
	// Following: the stream carries what the container writes later.
	stream, err := n.admin.CoreV1().Pods("default").GetLogs("chatty", &corev1.PodLogOptions{Follow: true}).Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	buf := make([]byte, 64)
	got := ""
	for !strings.Contains(got, "second") {
		k, err := stream.Read(buf)
		if err != nil {
			t.Fatalf("follow: %v after %q", err, got)
		}
		got += string(buf[:k])
	}
}

// TestPreviousLogsAfterARestart: logs of the run before the current one.
func TestPreviousLogsAfterARestart(t *testing.T) {
	n := startNode(t, "node-1", "10.99.15.0/24")
	p := sleeperPod("second-try")
	p.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "d", MountPath: "/d"}}
	p.Spec.Containers[0].Command = []string{"sh", "-c",
		`n=$(cat /d/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /d/n; echo "run $n"; [ $n -ge 2 ] && exec sleep 3600; exit 1`}
	if err := n.store.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	logs := func(previous bool) (string, error) {
		b, err := n.admin.CoreV1().Pods("default").GetLogs("second-try", &corev1.PodLogOptions{Previous: previous}).DoRaw(t.Context())
		return string(b), err
	}
	eventually(t, "current and previous logs", func() string {
		cur, err := logs(false)
		if err != nil || cur != "run 2\n" {
			return fmt.Sprintf("current: %q %v", cur, err)
		}
		prev, err := logs(true)
		if err != nil || prev != "run 1\n" {
			return fmt.Sprintf("previous: %q %v", prev, err)
		}
		return ""
	})
}

// TestEvictionUnderMemoryPressure: with the threshold all but 200Mi of the
// machine's memory, above what it has free, the node is under pressure
// (and 200Mi allocatable); the BestEffort pod goes, the Guaranteed one
// stays.
func TestEvictionUnderMemoryPressure(t *testing.T) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	threshold := resource.NewQuantity(int64(si.Totalram)*int64(si.Unit)-200<<20, resource.BinarySI)
	n := startNode(t, "node-1", "10.99.16.0/24", func(c *agent.Config) {
		c.Eviction, _ = agent.ParseEviction("memory.available<" + threshold.String())
	})
	ctx := t.Context()
	besteffort := sleeperPod("besteffort")
	guaranteed := sleeperPod("guaranteed")
	small := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}
	guaranteed.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: small, Limits: small}
	for _, p := range []*corev1.Pod{guaranteed, besteffort} {
		if err := n.store.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the BestEffort pod evicted", func() string {
		var p corev1.Pod
		if err := n.store.Get(ctx, "default", "besteffort", &p); err != nil {
			return err.Error()
		}
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "Evicted" || !strings.Contains(p.Status.Message, "low on resource: memory") {
			return fmt.Sprintf("status %s %s", p.Status.Phase, p.Status.Reason)
		}
		return ""
	})
	var g corev1.Pod
	if err := n.store.Get(ctx, "default", "guaranteed", &g); err != nil {
		t.Fatal(err)
	}
	if g.Status.Phase != corev1.PodRunning || g.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Fatalf("the Guaranteed pod: %s (%s)", g.Status.Phase, g.Status.QOSClass)
	}
	var node corev1.Node
	if err := n.store.Get(ctx, "", "node-1", &node); err != nil {
		t.Fatal(err)
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeMemoryPressure && c.Status != corev1.ConditionTrue {
			t.Fatalf("MemoryPressure is %s under pressure", c.Status)
		}
	}
	cs, _ := n.rt.List(ctx)
	for _, c := range cs {
		if c.Spec.PodName == "besteffort" {
			t.Fatal("the evicted pod's container is still on the node")
		}
	}
}
