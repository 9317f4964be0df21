package agent

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/keelson/keelson/agent/pod"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/internal/netnstest"
)

// TestRunFailureStopsWhatItStarted: a pod network that cannot be built ends
// Run with that error while the caller's context is still live, and Run
// leaves nothing running behind it: the node proxy, the pod routes, the
// informers and the heartbeat stop with it.
func TestRunFailureStopsWhatItStarted(t *testing.T) {
	rt, _ := containerdtest.NewRuntime(t)
	node := netnstest.New(t, "node")
	broken := errors.New("no bridge here")
	a, err := New(Config{
		Client: fake.NewClientset(), Runtime: rt, NodeName: "n1", PodCIDR: "10.42.0.0/24", RootDir: t.TempDir(),
		NewNetwork:   func(string) (pod.Network, error) { return nil, broken },
		ServiceProxy: true, NetNS: node.Path,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	before := goleak.IgnoreCurrent()
	done := make(chan error, 1)
	go func() { done <- a.Run(t.Context()) }()
	select {
	case err := <-done:
		if !errors.Is(err, broken) {
			t.Fatalf("Run: %v, want the pod network's error", err)
		}
	case <-time.After(time.Minute): // a bound for a hang, not a measure
		t.Fatal("Run did not return after the pod network failed")
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines left running after Run returned: %v", err)
	}
}
