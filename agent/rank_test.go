package agent

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// rankPod is a pod of one container named main; qos is "guaranteed",
// "burstable" (a memory request of 64Mi) or "besteffort"; storage, when
// set, is its ephemeral-storage request.
func rankPod(name, qos string, priority int32, storage string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}}}
	if priority != 0 {
		p.Spec.Priority = ptr.To(priority)
	}
	res := &p.Spec.Containers[0].Resources
	switch qos {
	case "guaranteed":
		l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
		res.Requests, res.Limits = l, l.DeepCopy()
	case "burstable":
		res.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
	}
	if storage != "" {
		if res.Requests == nil {
			res.Requests = corev1.ResourceList{}
		}
		res.Requests[corev1.ResourceEphemeralStorage] = resource.MustParse(storage)
		if res.Limits != nil {
			res.Limits[corev1.ResourceEphemeralStorage] = resource.MustParse(storage)
		}
	}
	return p
}

func names(pods []*corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// uses is a pod usage from totals by pod name.
func uses(totals map[string]int64) podUsage {
	out := podUsage{}
	for name, n := range totals {
		out[types.UID("uid-"+name)] = usageOf{total: n}
	}
	return out
}

const mi = int64(1) << 20

func TestRankMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		use  map[string]int64
		want []string
	}{
		{"BestEffort before Burstable over its request, though it uses less",
			[]*corev1.Pod{rankPod("burst", "burstable", 0, ""), rankPod("be", "besteffort", 0, "")},
			map[string]int64{"burst": 500 * mi, "be": 10 * mi}, []string{"be", "burst"}},
		{"Guaranteed and Burstable within its request stay",
			[]*corev1.Pod{rankPod("g", "guaranteed", 0, ""), rankPod("within", "burstable", 0, "")},
			map[string]int64{"g": 900 * mi, "within": 60 * mi}, []string{}},
		{"Burstable ones by use beyond the request, not by use",
			[]*corev1.Pod{rankPod("a", "burstable", 0, ""), rankPod("b", "burstable", 0, "")},
			map[string]int64{"a": 100 * mi, "b": 80 * mi}, []string{"a", "b"}},
		{"BestEffort ones by use, largest first",
			[]*corev1.Pod{rankPod("small", "besteffort", 0, ""), rankPod("big", "besteffort", 0, ""), rankPod("none", "besteffort", 0, "")},
			map[string]int64{"small": 1 * mi, "big": 300 * mi}, []string{"big", "small", "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(rankMemory(tc.pods, uses(tc.use))); !slices.Equal(got, tc.want) {
				t.Errorf("ranked %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRankPIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		use  map[string]int64
		want []string
	}{
		{"most processes first, whatever the QoS class or memory",
			[]*corev1.Pod{rankPod("be", "besteffort", 0, ""), rankPod("forker", "guaranteed", 0, ""), rankPod("burst", "burstable", 0, "")},
			map[string]int64{"be": 3, "forker": 4000, "burst": 20}, []string{"forker", "burst", "be"}},
		{"lower priority first, though it has fewer",
			[]*corev1.Pod{rankPod("important", "besteffort", 1000, ""), rankPod("batch", "besteffort", 0, "")},
			map[string]int64{"important": 5000, "batch": 2}, []string{"batch", "important"}},
		{"a pod not sampled yet counts none",
			[]*corev1.Pod{rankPod("new", "besteffort", 0, ""), rankPod("old", "guaranteed", 0, "")},
			map[string]int64{"old": 1}, []string{"old", "new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(rankPIDs(tc.pods, uses(tc.use))); !slices.Equal(got, tc.want) {
				t.Errorf("ranked %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRankDisk(t *testing.T) {
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		use  map[string]int64
		want []string
	}{
		{"largest use first, whatever the memory use or process count",
			[]*corev1.Pod{rankPod("logger", "besteffort", 0, ""), rankPod("writer", "besteffort", 0, "")},
			map[string]int64{"logger": 2 * mi, "writer": 200 * mi}, []string{"writer", "logger"}},
		{"a pod within its request after every pod beyond its own, though it uses more",
			[]*corev1.Pod{rankPod("within", "guaranteed", 0, "1Gi"), rankPod("over", "besteffort", 0, "")},
			map[string]int64{"within": 800 * mi, "over": 1 * mi}, []string{"over", "within"}},
		{"a Guaranteed pod beyond its request before a BestEffort one that uses less",
			[]*corev1.Pod{rankPod("be", "besteffort", 0, ""), rankPod("g", "guaranteed", 0, "")},
			map[string]int64{"be": 1 * mi, "g": 300 * mi}, []string{"g", "be"}},
		{"among those beyond, lower priority first",
			[]*corev1.Pod{rankPod("important", "besteffort", 100, ""), rankPod("batch", "besteffort", 0, "")},
			map[string]int64{"important": 500 * mi, "batch": 1 * mi}, []string{"batch", "important"}},
		{"by use beyond the request, not by use",
			[]*corev1.Pod{rankPod("asked", "burstable", 0, "400Mi"), rankPod("not", "burstable", 0, "")},
			map[string]int64{"asked": 500 * mi, "not": 200 * mi}, []string{"not", "asked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(rankDisk(tc.pods, uses(tc.use))); !slices.Equal(got, tc.want) {
				t.Errorf("ranked %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEvictionMessage(t *testing.T) {
	q := resource.MustParse("100Mi")
	disk := signal{resource: corev1.ResourceEphemeralStorage, threshold: Threshold{Quantity: &q}, avail: 40 * mi, capacity: 256 * mi, observed: true}
	p := rankPod("w", "besteffort", 0, "")
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("10Mi")}}})
	got := disk.message(p, usageOf{total: 220 * mi, byContainer: map[string]int64{"main": 12 * mi, "side": 1 * mi}})
	want := "The node was low on resource: ephemeral-storage. Threshold quantity: 100Mi, available: 40Mi. " +
		"Container main was using 12Mi, request is 0, has larger consumption of ephemeral-storage."
	if got != want {
		t.Errorf("message\n%s\nwant\n%s", got, want)
	}
	pids := signal{resource: resourcePIDs, threshold: Threshold{Percent: 5}, avail: 1200, capacity: 32768, observed: true}
	if got, want := pids.message(p, usageOf{total: 3000}), "The node was low on resource: pids. Threshold quantity: 1638, available: 1200."; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if !pids.under() || disk.under() == false || (signal{resource: resourcePIDs, threshold: Threshold{Percent: 5}}).under() {
		t.Error("under: want true for 1200 of 32768 below 5% and 40Mi below 100Mi, false for a signal not observed")
	}
}

// TestPressureReportedOnce: a crossing the loop saw is in the next status
// though the signal is back above its threshold, and only in that one; one
// seen while a status was being posted is kept for the next.
func TestPressureReportedOnce(t *testing.T) {
	e := newEvictionState()
	e.cross(corev1.NodeDiskPressure)
	select {
	case <-e.poke:
	default:
		t.Fatal("a first crossing does not ask for a status")
	}
	seen := e.crossings()
	if seen[corev1.NodeDiskPressure] == 0 {
		t.Fatal("the crossing is not reported")
	}
	e.cross(corev1.NodePIDPressure) // while the status is posted
	e.reported(seen, []corev1.NodeCondition{{Type: corev1.NodeDiskPressure, Status: corev1.ConditionTrue}})
	after := e.crossings()
	if after[corev1.NodeDiskPressure] != 0 || after[corev1.NodePIDPressure] == 0 {
		t.Errorf("after a status: %v, want only PIDPressure left", after)
	}
	<-e.poke // PIDPressure's
	e.cross(corev1.NodeDiskPressure)
	select {
	case <-e.poke:
		t.Error("a crossing of a condition posted True asks for a status again")
	default:
	}
}
