package reconciler

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func labeled(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func term(key, value, topologyKey string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}},
		TopologyKey:   topologyKey,
	}
}

func withAffinity(affinity, anti []corev1.PodAffinityTerm) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{}
		if affinity != nil {
			p.Spec.Affinity.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: affinity}
		}
		if anti != nil {
			p.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: anti}
		}
	}
}

// TestPodAffinityFilter runs the inter-pod affinity filter on node a (zone
// z1) and node b (zone z2); node c (zone z1) holds the bound pods.
func TestPodAffinityFilter(t *testing.T) {
	on := func(node string, p *corev1.Pod) *corev1.Pod { p.Spec.NodeName = node; return p }
	tests := []struct {
		name  string
		bound []*corev1.Pod
		pod   *corev1.Pod
		wantA []string
		wantB []string
	}{
		{name: "no terms", bound: []*corev1.Pod{on("c", testPod("db", labeled("app", "db")))}, pod: testPod("p")},
		{name: "affinity to a zone", bound: []*corev1.Pod{on("c", testPod("db", labeled("app", "db")))},
			pod:   testPod("p", withAffinity([]corev1.PodAffinityTerm{term("app", "db", zoneLabel)}, nil)),
			wantB: []string{reasonPodAffinity}},
		{name: "affinity to a host", bound: []*corev1.Pod{on("c", testPod("db", labeled("app", "db")))},
			pod:   testPod("p", withAffinity([]corev1.PodAffinityTerm{term("app", "db", corev1.LabelHostname)}, nil)),
			wantA: []string{reasonPodAffinity}, wantB: []string{reasonPodAffinity}},
		{name: "affinity with no match anywhere, first of its group", pod: testPod("p", labeled("app", "web"),
			withAffinity([]corev1.PodAffinityTerm{term("app", "web", zoneLabel)}, nil))},
		{name: "affinity with no match anywhere", pod: testPod("p", withAffinity([]corev1.PodAffinityTerm{term("app", "db", zoneLabel)}, nil)),
			wantA: []string{reasonPodAffinity}, wantB: []string{reasonPodAffinity}},
		{name: "anti-affinity by zone", bound: []*corev1.Pod{on("c", testPod("w1", labeled("app", "web")))},
			pod:   testPod("p", labeled("app", "web"), withAffinity(nil, []corev1.PodAffinityTerm{term("app", "web", zoneLabel)})),
			wantA: []string{reasonPodAntiAffinity}},
		{name: "anti-affinity by host", bound: []*corev1.Pod{on("c", testPod("w1", labeled("app", "web")))},
			pod: testPod("p", labeled("app", "web"), withAffinity(nil, []corev1.PodAffinityTerm{term("app", "web", corev1.LabelHostname)}))},
		{name: "anti-affinity of an existing pod",
			bound: []*corev1.Pod{on("c", testPod("w1", labeled("app", "web"), withAffinity(nil, []corev1.PodAffinityTerm{term("app", "web", zoneLabel)})))},
			pod:   testPod("p", labeled("app", "web")), wantA: []string{reasonExistingAntiAff}},
		{name: "anti-affinity in another namespace does not count",
			bound: []*corev1.Pod{on("c", testPod("w1", labeled("app", "web"), func(p *corev1.Pod) { p.Namespace = "other" }))},
			pod:   testPod("p", withAffinity(nil, []corev1.PodAffinityTerm{term("app", "web", zoneLabel)}))},
		{name: "anti-affinity with a namespace selector",
			bound: []*corev1.Pod{on("c", testPod("w1", labeled("app", "web"), func(p *corev1.Pod) { p.Namespace = "other" }))},
			pod: testPod("p", withAffinity(nil, []corev1.PodAffinityTerm{func() corev1.PodAffinityTerm {
				t := term("app", "web", zoneLabel)
				t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}
				return t
			}()})),
			wantA: []string{reasonPodAntiAffinity}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newSchedCache()
			sc.nsLabels = func(ns string) labels.Set {
				if ns == "other" {
					return labels.Set{"team": "x"}
				}
				return nil
			}
			for name, zone := range map[string]string{"a": "z1", "b": "z2", "c": "z1"} {
				sc.setNode(name, testNode(name, func(n *corev1.Node) { n.Labels[zoneLabel] = zone }))
			}
			for _, p := range tt.bound {
				sc.setPod(p.UID, p)
			}
			c := mustCandidate(t, tt.pod)
			c.podAffinity = sc.podAffinityStateLocked(c, sc.nsLabels)
			if got := filterPodAffinity(c, sc.nodes["a"]); !reflect.DeepEqual(got, tt.wantA) {
				t.Errorf("node a: %q, want %q", got, tt.wantA)
			}
			if got := filterPodAffinity(c, sc.nodes["b"]); !reflect.DeepEqual(got, tt.wantB) {
				t.Errorf("node b: %q, want %q", got, tt.wantB)
			}
		})
	}
}

func TestPreferredPodAffinityScore(t *testing.T) {
	sc := newSchedCache()
	for name, zone := range map[string]string{"a": "z1", "b": "z2"} {
		sc.setNode(name, testNode(name, func(n *corev1.Node) { n.Labels[zoneLabel] = zone }))
	}
	cache := testPod("cache", labeled("app", "cache"))
	cache.Spec.NodeName = "a"
	sc.setPod(cache.UID, cache)
	near := testPod("near", func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
			{Weight: 50, PodAffinityTerm: term("app", "cache", zoneLabel)}}}}
	})
	far := testPod("far", func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
			{Weight: 50, PodAffinityTerm: term("app", "cache", zoneLabel)}}}}
	})
	for _, tt := range []struct {
		pod  *corev1.Pod
		want string
	}{{near, "a"}, {far, "b"}} {
		c := mustCandidate(t, tt.pod)
		c.podAffinity = sc.podAffinityStateLocked(c, sc.nsLabels)
		nodes := []scored{{n: sc.nodes["a"]}, {n: sc.nodes["b"]}}
		normalizeMinMax(c, nodes, make([]int64, 2), preferredPodAffinityRaw, 1)
		best := nodes[0]
		if nodes[1].score > best.score {
			best = nodes[1]
		}
		if best.n.name != tt.want {
			t.Errorf("%s: best node %s (scores %d, %d), want %s", tt.pod.Name, best.n.name, nodes[0].score, nodes[1].score, tt.want)
		}
	}
}
