package reconciler

import (
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apitypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func testRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func ownedPod(name, owner string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	return testPod(name, append([]func(*corev1.Pod){func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner,
			UID: apitypes.UID("rs-" + owner), Controller: ptr.To(true)}}
	}}, mutate...)...)
}

// TestScores checks each score on its own: which of two nodes it prefers.
func TestScores(t *testing.T) {
	zone := func(z string) func(*corev1.Node) {
		return func(n *corev1.Node) { n.Labels[zoneLabel] = z }
	}
	tests := []struct {
		name       string
		score      func(c *candidate, nodes []scored)
		pod        *corev1.Pod
		better     *nodeInfo
		worse      *nodeInfo
		equalAllow bool
	}{
		{
			name:   "least allocated prefers the emptier node",
			score:  each(leastAllocatedScore),
			pod:    testPod("p", requests("1", "1Gi")),
			better: infoWith(testNode("a")),
			worse:  infoWith(testNode("b"), testPod("x", requests("2", "4Gi"))),
		},
		{
			name:   "balanced prefers equal shares of cpu and memory",
			score:  each(balancedScore),
			pod:    testPod("p", requests("1", "2Gi")),
			better: infoWith(testNode("a")),
			worse:  infoWith(testNode("b"), testPod("x", requests("3", "100Mi"))),
		},
		{
			name:  "image locality prefers the node with the image",
			score: each(imageScore),
			pod:   testPod("p"),
			better: infoWith(testNode("a", func(n *corev1.Node) {
				n.Status.Images = []corev1.ContainerImage{{Names: []string{"docker.io/library/web:1"}, SizeBytes: 500 << 20}}
			})),
			worse: infoWith(testNode("b")),
		},
		{
			name: "preferred node affinity",
			score: func(c *candidate, nodes []scored) {
				normalize(c, nodes, make([]int64, len(nodes)), preferredAffinityRaw, 1, false)
			},
			pod: testPod("p", func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 10,
						Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
							{Key: "disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"ssd"}}}}}},
				}}
			}),
			better: infoWith(testNode("a", func(n *corev1.Node) { n.Labels["disk"] = "ssd" })),
			worse:  infoWith(testNode("b")),
		},
		{
			name: "PreferNoSchedule taint is avoided",
			score: func(c *candidate, nodes []scored) {
				normalize(c, nodes, make([]int64, len(nodes)), preferNoScheduleRaw, 1, true)
			},
			pod:    testPod("p"),
			better: infoWith(testNode("a")),
			worse: infoWith(testNode("b", func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule}}
			})),
		},
		{
			name: "spreading prefers the node without a sibling",
			score: func(c *candidate, nodes []scored) {
				countOwned(c, nodes)
				spreadScores(c, nodes, make([]int64, len(nodes)))
			},
			pod:    ownedPod("p", "web"),
			better: infoWith(testNode("a"), ownedPod("x", "other")),
			worse:  infoWith(testNode("b"), ownedPod("y", "web")),
		},
		{
			name: "spreading prefers the zone without a sibling",
			score: func(c *candidate, nodes []scored) {
				nodes = append(nodes, scored{n: infoWith(testNode("c", zone("z1")), ownedPod("w", "web"))})
				countOwned(c, nodes)
				spreadScores(c, nodes, make([]int64, 3))
			},
			pod: ownedPod("p", "web"),
			// a and b hold no sibling; a's zone z1 holds one on node c.
			better: infoWith(testNode("b", zone("z2"))),
			worse:  infoWith(testNode("a", zone("z1"))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := make([]scored, 2, 3) // room for a third node a score may add
			nodes[0], nodes[1] = scored{n: tt.better}, scored{n: tt.worse}
			tt.score(mustCandidate(t, tt.pod), nodes)
			if nodes[0].score <= nodes[1].score {
				t.Errorf("score of %s = %d, of %s = %d: want the first higher", tt.better.name, nodes[0].score, tt.worse.name, nodes[1].score)
			}
		})
	}
}

// countOwned counts, as the scheduler's snapshot does, the pods of the
// candidate's controller on each of nodes.
func countOwned(c *candidate, nodes []scored) {
	c.owned = map[*nodeInfo]int{}
	for _, sn := range nodes {
		for _, pi := range sn.n.pods {
			if pi.owner == c.info.owner {
				c.owned[sn.n]++
			}
		}
	}
}

func each(f func(*candidate, *nodeInfo) int64) func(*candidate, []scored) {
	return func(c *candidate, nodes []scored) {
		for i := range nodes {
			nodes[i].score += f(c, nodes[i].n)
		}
	}
}

func TestScheduleSpreadsReplicas(t *testing.T) {
	c := newSchedCache()
	for _, name := range []string{"a", "b", "c"} {
		c.setNode(name, testNode(name))
	}
	for i := range 6 {
		if _, err := c.schedule(mustCandidate(t, ownedPod(string(rune('p'+i)), "web")), testRand()); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		if got := len(c.nodes[name].pods); got != 2 {
			t.Errorf("node %s holds %d of 6 replicas, want 2", name, got)
		}
	}
}

// TestScheduleSpreadsOverFullerNodes: a replica goes to the node without a
// sibling even when that node is the fuller one, and once its sibling is
// gone, to the emptier node again.
func TestScheduleSpreadsOverFullerNodes(t *testing.T) {
	c := newSchedCache()
	c.setNode("a", testNode("a"))
	c.setNode("b", testNode("b"))
	place := func(p *corev1.Pod, node string) {
		p.Spec.NodeName = node
		c.setPod(p.UID, p)
	}
	sibling := ownedPod("web-1", "web")
	place(sibling, "a")
	place(ownedPod("other-1", "other"), "b")
	place(ownedPod("other-2", "other"), "b")
	node, err := c.schedule(mustCandidate(t, ownedPod("web-2", "web")), testRand())
	if err != nil {
		t.Fatal(err)
	}
	if node != "b" {
		t.Errorf("web-2 went to %s, beside its sibling; want b", node)
	}
	c.setPod(sibling.UID, nil)
	c.setPod("uid-web-2", nil) // its binding failed: dropped from the snapshot
	if node, _ := c.schedule(mustCandidate(t, ownedPod("web-3", "web")), testRand()); node != "a" {
		t.Errorf("with no sibling left, web-3 went to %s; want a, the emptier", node)
	}
}

func TestNormalizeImage(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                         "docker.io/library/nginx:latest",
		"nginx:1.27":                    "docker.io/library/nginx:1.27",
		"team/app:2":                    "docker.io/team/app:2",
		"localhost/app:1":               "localhost/app:1",
		"registry.example.com:5000/app": "registry.example.com:5000/app:latest",
		"docker.io/library/nginx:1":     "docker.io/library/nginx:1",
	} {
		if got := normalizeImage(in); got != want {
			t.Errorf("normalizeImage(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSetPodUpdates: a status write keeps a pod's accounting as it is,
// while a change of its labels or controller is accounted again.
func TestSetPodUpdates(t *testing.T) {
	c := newSchedCache()
	c.setNode("a", testNode("a"))
	p := ownedPod("web-1", "web", func(p *corev1.Pod) {
		p.Spec.NodeName, p.Generation, p.Labels = "a", 2, map[string]string{"app": "web"}
	})
	c.setPod(p.UID, p)
	running := p.DeepCopy()
	running.Status.Phase = corev1.PodRunning
	c.setPod(p.UID, running)
	if n := c.nodes["a"]; len(n.pods) != 1 || n.nonzero.milliCPU != defaultMilliCPURequest || c.pods[p.UID].pod != running {
		t.Fatalf("after a status write node a holds %d pods, %dm: want the one pod, as it is now", len(n.pods), n.nonzero.milliCPU)
	}
	relabelled := running.DeepCopy()
	relabelled.Labels = map[string]string{"app": "api"}
	relabelled.OwnerReferences = nil
	c.setPod(p.UID, relabelled)
	if len(c.byLabel["app=web"]) != 0 || len(c.byLabel["app=api"]) != 1 {
		t.Errorf("label index after relabelling: app=web %d, app=api %d; want 0 and 1", len(c.byLabel["app=web"]), len(c.byLabel["app=api"]))
	}
	if len(c.owned) != 0 {
		t.Errorf("the orphaned pod still counts for its controller: %v", c.owned)
	}
	if n := c.nodes["a"]; len(n.pods) != 1 || n.nonzero.milliCPU != defaultMilliCPURequest {
		t.Errorf("after relabelling node a holds %d pods, %dm", len(n.pods), n.nonzero.milliCPU)
	}
}
