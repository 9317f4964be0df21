package reconciler

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func spreadBy(key string, maxSkew int32, mutate ...func(*corev1.TopologySpreadConstraint)) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		c := corev1.TopologySpreadConstraint{MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}
		for _, m := range mutate {
			m(&c)
		}
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
	}
}

// TestSpreadFilter: nodes a and c are in zone z1, b in z2, d has no zone.
func TestSpreadFilter(t *testing.T) {
	web := func(name, node string) *corev1.Pod {
		p := testPod(name, labeled("app", "web"))
		p.Spec.NodeName = node
		return p
	}
	tests := []struct {
		name  string
		bound []*corev1.Pod
		pod   *corev1.Pod
		want  map[string][]string
	}{
		{name: "balanced zones admit both", pod: testPod("p", labeled("app", "web"), spreadBy(zoneLabel, 1)),
			want: map[string][]string{"d": {reasonSpreadMissing}}},
		{name: "a full zone is refused", bound: []*corev1.Pod{web("w1", "c")},
			pod:  testPod("p", labeled("app", "web"), spreadBy(zoneLabel, 1)),
			want: map[string][]string{"a": {reasonSpread}, "c": {reasonSpread}, "d": {reasonSpreadMissing}}},
		{name: "a larger skew admits it", bound: []*corev1.Pod{web("w1", "c")},
			pod:  testPod("p", labeled("app", "web"), spreadBy(zoneLabel, 2)),
			want: map[string][]string{"d": {reasonSpreadMissing}}},
		{name: "a pod the selector does not match counts nothing for itself", bound: []*corev1.Pod{web("w1", "c")},
			pod:  testPod("p", spreadBy(zoneLabel, 1)),
			want: map[string][]string{"d": {reasonSpreadMissing}}},
		{name: "minDomains above the domains there are", bound: []*corev1.Pod{web("w1", "c"), web("w2", "b")},
			pod:  testPod("p", labeled("app", "web"), spreadBy(zoneLabel, 1, func(c *corev1.TopologySpreadConstraint) { c.MinDomains = ptr.To(int32(3)) })),
			want: map[string][]string{"a": {reasonSpread}, "b": {reasonSpread}, "c": {reasonSpread}, "d": {reasonSpreadMissing}}},
		{name: "by hostname", bound: []*corev1.Pod{web("w1", "c")},
			pod:  testPod("p", labeled("app", "web"), spreadBy(corev1.LabelHostname, 1)),
			want: map[string][]string{"c": {reasonSpread}}},
		{name: "ScheduleAnyway does not filter", bound: []*corev1.Pod{web("w1", "c")},
			pod: testPod("p", labeled("app", "web"), spreadBy(zoneLabel, 1, scheduleAnyway))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newSchedCache()
			for name, zone := range map[string]string{"a": "z1", "b": "z2", "c": "z1", "d": ""} {
				sc.setNode(name, testNode(name, func(n *corev1.Node) {
					if zone != "" {
						n.Labels[zoneLabel] = zone
					}
				}))
			}
			for _, p := range tt.bound {
				sc.setPod(p.UID, p)
			}
			c := mustCandidate(t, tt.pod)
			sc.spreadStateLocked(c)
			for _, name := range []string{"a", "b", "c", "d"} {
				if got := filterSpread(c, sc.nodes[name]); !reflect.DeepEqual(got, tt.want[name]) {
					t.Errorf("node %s: %q, want %q", name, got, tt.want[name])
				}
			}
		})
	}
}

func scheduleAnyway(c *corev1.TopologySpreadConstraint) { c.WhenUnsatisfiable = corev1.ScheduleAnyway }

func TestSoftSpreadScore(t *testing.T) {
	sc := newSchedCache()
	for name, zone := range map[string]string{"a": "z1", "b": "z2", "c": "z1"} {
		sc.setNode(name, testNode(name, func(n *corev1.Node) { n.Labels[zoneLabel] = zone }))
	}
	w := testPod("w1", labeled("app", "web"))
	w.Spec.NodeName = "c"
	sc.setPod(w.UID, w)
	c := mustCandidate(t, testPod("p", labeled("app", "web"), spreadBy(zoneLabel, 1, scheduleAnyway)))
	sc.spreadStateLocked(c)
	nodes := []scored{{n: sc.nodes["a"]}, {n: sc.nodes["b"]}}
	normalize(c, nodes, make([]int64, 2), softSpreadRaw, 1, true)
	if nodes[1].score <= nodes[0].score {
		t.Errorf("zone z2's node b scored %d, z1's node a %d: want b higher", nodes[1].score, nodes[0].score)
	}
}
