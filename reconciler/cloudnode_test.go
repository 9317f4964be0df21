package reconciler

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
)

// describeCloudNode is what the cloud node controller writes on a node:
// "zone=z1 region=r1 id=fake://n1 addrs=[InternalIP=10.0.0.1] taints=[…]".
func describeCloudNode(n *corev1.Node) string {
	var addrs, taints []string
	for _, a := range n.Status.Addresses {
		addrs = append(addrs, string(a.Type)+"="+a.Address)
	}
	for _, t := range n.Spec.Taints {
		taints = append(taints, t.Key+":"+string(t.Effect))
	}
	return fmt.Sprintf("zone=%s region=%s id=%s addrs=%v taints=%v", n.Labels[corev1.LabelTopologyZone], n.Labels[corev1.LabelTopologyRegion],
		n.Spec.ProviderID, addrs, taints)
}

// TestCloudNodeController: nodes get their zone, region, provider ID and
// addresses (but the InternalIP, which the agent reports) from the
// provider and lose the uninitialized taint; a node not
// Ready whose machine is shut down is tainted until it is no longer; one
// whose machine is gone is deleted.
func TestCloudNodeController(t *testing.T) {
	fake := newFakeCloud()
	fake.setInstance("n1", false, false, &cloud.InstanceMetadata{ProviderID: "fake://n1", Zone: "z1", Region: "r1",
		NodeAddresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, {Type: corev1.NodeExternalIP, Address: "203.0.113.1"}}})
	fake.setInstance("n2", true, false, &cloud.InstanceMetadata{ProviderID: "fake://n2"})
	fake.setInstance("n3", false, true, nil)
	fake.setInstance("n4", false, false, &cloud.InstanceMetadata{ProviderID: "fake://other"})
	st := startCloud(t, fake,
		cloudNode("n1", true, func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: cloud.TaintUninitialized, Effect: corev1.TaintEffectNoSchedule}, {Key: "team", Value: "a", Effect: corev1.TaintEffectNoSchedule}}
		}),
		cloudNode("n2", false), cloudNode("n3", false),
		cloudNode("n4", true, func(n *corev1.Node) { n.Spec.ProviderID = "agent://n4" }))

	waitCloudNode(t, st, "n1", "zone=z1 region=r1 id=fake://n1 addrs=[ExternalIP=203.0.113.1] taints=[team:NoSchedule]")
	waitCloudNode(t, st, "n2", "zone= region= id=fake://n2 addrs=[] taints=[node.cloudprovider.kubernetes.io/shutdown:NoSchedule]")
	waitCloudNode(t, st, "n4", "zone= region= id=agent://n4 addrs=[] taints=[]")
	eventually(t, "n3 deleted", func() (bool, string) {
		err := st.Get(t.Context(), "", "n3", &corev1.Node{})
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	waitEvents(t, st, "Node", "n3", "DeletingNode Deleting node n3 because it does not exist in the cloud provider")

	// The machine runs again: the taint goes at the next look.
	fake.setInstance("n2", false, false, nil)
	waitCloudNode(t, st, "n2", "zone= region= id=fake://n2 addrs=[] taints=[]")
	// A Ready node is not asked about: its machine evidently runs.
	fake.setInstance("n2", true, true, nil)
	changeNode(t, st, "n2", nodeReadyAs(true))
	eventually(t, "two looks at n2 Ready in a row", func() (bool, string) {
		var n2 []string
		for _, c := range fake.callsOf("") {
			if strings.HasSuffix(c, " n2") {
				n2 = append(n2, c)
			}
		}
		last := n2[max(len(n2)-3, 0):]
		return slices.Equal(last, []string{"metadata n2", "metadata n2", "metadata n2"}), fmt.Sprint(last)
	})
	if got := describeCloudNode(getNode(t, st, "n2")); got != "zone= region= id=fake://n2 addrs=[] taints=[]" {
		t.Errorf("Ready n2: %s", got)
	}
	if err := st.Get(t.Context(), "", "n2", &corev1.Node{}); err != nil {
		t.Errorf("Ready n2 whose machine is gone was deleted: %v", err)
	}
	// A node the agent writes keeps what the agent wrote.
	changeNode(t, st, "n1", func(n *corev1.Node) { n.Labels["agent"] = "yes" })
	waitCloudNode(t, st, "n1", "zone=z1 region=r1 id=fake://n1 addrs=[ExternalIP=203.0.113.1] taints=[team:NoSchedule]")
	if n := getNode(t, st, "n1"); n.Labels["agent"] != "yes" || !slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeReady }) {
		t.Errorf("n1 lost the agent's fields: %v %v", n.Labels, n.Status.Conditions)
	}
}

func waitCloudNode(t *testing.T, st *store.Store, name, want string) {
	t.Helper()
	eventually(t, "node "+name+": "+want, func() (bool, string) {
		got := describeCloudNode(getNode(t, st, name))
		return got == want, got
	})
}
