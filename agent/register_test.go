package agent

import (
	"errors"
	"log/slog"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/keelson/keelson/agent/pod"
	"github.com/keelson/keelson/agent/runtime/sim"
)

// TestRegisterTriesAgain: while the API cannot answer (its store timed
// out) the agent tries again and registers once it can, as the kubelet
// does; an answer that asking again will not change (a refused node) ends
// it at once.
func TestRegisterTriesAgain(t *testing.T) {
	newAgent := func(t *testing.T, refuse func() error) (*Agent, *fake.Clientset) {
		client := fake.NewClientset()
		client.PrependReactor("create", "nodes", func(k8stesting.Action) (bool, kruntime.Object, error) {
			if err := refuse(); err != nil {
				return true, nil, err
			}
			return false, nil, nil
		})
		a, err := New(Config{
			Client: client, Runtime: sim.New(sim.Config{}), NodeName: "n1", PodCIDR: "10.42.0.0/24", RootDir: t.TempDir(),
			NewNetwork: func(string) (pod.Network, error) { return nil, errors.New("not used") },
			Logger:     slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		return a, client
	}

	timeouts := 3
	a, client := newAgent(t, func() error {
		if timeouts > 0 {
			timeouts--
			return apierrors.NewInternalError(errors.New("etcd transaction of 1 ops: etcdserver: request timed out"))
		}
		return nil
	})
	if err := a.registerNode(t.Context()); err != nil {
		t.Fatalf("register after three timeouts: %v", err)
	}
	if _, err := client.CoreV1().Nodes().Get(t.Context(), "n1", metav1.GetOptions{}); err != nil {
		t.Fatalf("the node is not registered: %v", err)
	}

	refusals := 0
	a, _ = newAgent(t, func() error {
		refusals++
		return apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "n1", errors.New("node n1 may not register n1"))
	})
	if err := a.registerNode(t.Context()); !apierrors.IsForbidden(err) || refusals != 1 {
		t.Fatalf("a refused registration: %v after %d tries, want Forbidden after one", err, refusals)
	}
}
