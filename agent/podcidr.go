package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent/network"
	"github.com/keelson/keelson/agent/pod"
)

// lazyNetwork is the pod network of a node that learns its pod CIDR from its
// Node, once the control plane has assigned one: until then no pod is wired.
type lazyNetwork struct {
	mu  sync.Mutex
	net pod.Network
}

var errNoPodCIDR = errors.New("the pod network is not ready: the node has no pod CIDR yet")

func (l *lazyNetwork) get() (pod.Network, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.net == nil {
		return nil, errNoPodCIDR
	}
	return l.net, nil
}

func (l *lazyNetwork) Setup(ctx context.Context, podID, netns string, ports []network.PortMapping) (net.IP, error) {
	n, err := l.get()
	if err != nil {
		return nil, err
	}
	return n.Setup(ctx, podID, netns, ports)
}

func (l *lazyNetwork) Teardown(ctx context.Context, podID, netns string, ports []network.PortMapping) error {
	n, err := l.get()
	if err != nil {
		return err
	}
	return n.Teardown(ctx, podID, netns, ports)
}

// awaitPodCIDR waits until the Node has a spec.podCIDR (the control plane's
// IPAM assigns one) and builds the pod network on it.
func (a *Agent) awaitPodCIDR(ctx context.Context) error {
	logged := false
	for {
		node, err := a.cfg.Client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err == nil && node.Spec.PodCIDR != "" {
			n, err := a.cfg.NewNetwork(node.Spec.PodCIDR)
			if err != nil {
				return fmt.Errorf("pod network on %s: %w", node.Spec.PodCIDR, err)
			}
			a.lazy.mu.Lock()
			a.lazy.net = n
			a.lazy.mu.Unlock()
			a.log.Info("pod network ready", "pod_cidr", node.Spec.PodCIDR)
			return nil
		}
		if !logged {
			a.log.Info("waiting for the control plane to assign this node a pod CIDR")
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
