package reconciler

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
)

func withPodCIDR(cidr string) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr} }
}

// TestCloudRoutes: each node's pod CIDR gets a route; the routes of nodes
// that are gone go, those outside the cluster CIDR are left alone; a failed
// creation is reported on the node and retried.
func TestCloudRoutes(t *testing.T) {
	fake := newFakeCloud()
	for _, r := range []cloud.Route{
		{Name: "stale", TargetNode: "gone", DestinationCIDR: "10.42.9.0/24"},
		{Name: "foreign", TargetNode: "router", DestinationCIDR: "192.168.7.0/24"},
		{Name: "moved", TargetNode: "n2", DestinationCIDR: "10.42.8.0/24"},
	} {
		if err := fake.CreateRoute(context.Background(), r.Name, r); err != nil {
			t.Fatal(err)
		}
	}
	fake.calls = nil
	st := startCloud(t, fake, cloudNode("n1", true, withPodCIDR("10.42.1.0/24")), cloudNode("n2", true, withPodCIDR("10.42.2.0/24")), cloudNode("n3", true))
	waitRoutes(t, fake, "n1 10.42.1.0/24; n2 10.42.2.0/24; router 192.168.7.0/24")
	waitCall(t, fake, "create n1 10.42.1.0/24")

	deleteNode(t, st, "n2")
	waitRoutes(t, fake, "n1 10.42.1.0/24; router 192.168.7.0/24")

	fake.failNext("create", 1<<30)
	changeNode(t, st, "n3", withPodCIDR("10.42.3.0/24"))
	waitEvents(t, st, "Node", "n3", "FailedToCreateRoute Could not create route 10.42.3.0/24 for node n3: create: injected failure")
	fake.failNext("create", 0)
	waitRoutes(t, fake, "n1 10.42.1.0/24; n3 10.42.3.0/24; router 192.168.7.0/24")

	// A route deleted behind keelson's back is made again at the next list.
	fake.mu.Lock()
	for name, r := range fake.routes {
		if r.TargetNode == "n1" {
			delete(fake.routes, name)
		}
	}
	fake.mu.Unlock()
	waitRoutes(t, fake, "n1 10.42.1.0/24; n3 10.42.3.0/24; router 192.168.7.0/24")
}

func waitRoutes(t *testing.T, fake *fakeCloud, want string) {
	t.Helper()
	eventually(t, "routes "+want, func() (bool, string) {
		got := fake.routeTable()
		return got == want, got
	})
}

func deleteNode(t *testing.T, st *store.Store, name string) {
	t.Helper()
	if err := st.Delete(t.Context(), store.MustResource("nodes"), "", name, nil); err != nil {
		t.Fatal(err)
	}
}
