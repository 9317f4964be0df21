// Package network gives pods their network: a network namespace per pod, set up
// through CNI (libcni with the standard plugins: a bridge, host-local IP
// addresses from the node's pod CIDR, loopback, and portmap for hostPorts).
package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// Defaults, as DESIGN.md sets them.
const (
	DefaultBridge    = "keelson0"
	DefaultPluginDir = "/usr/lib/cni"
)

// Config says how the node's pod network looks.
type Config struct {
	// PodCIDR is the node's share of the cluster CIDR, e.g. 10.42.0.0/24. Required.
	PodCIDR string
	// Bridge is the node's bridge; DefaultBridge when empty.
	Bridge string
	// PluginDirs hold the CNI plugin binaries; DefaultPluginDir when empty.
	PluginDirs []string
	// DataDir keeps CNI's cache and the IP allocations. Required.
	DataDir string
	// NoMasquerade leaves pod traffic to other networks un-NATed.
	NoMasquerade bool
}

// PortMapping is a container's hostPort.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"` // "tcp" or "udp"
	HostIP        string `json:"hostIP,omitempty"`
}

// Network sets pods' namespaces up and tears them down. Safe for concurrent use.
type Network struct {
	cni      *libcni.CNIConfig
	pod      *libcni.NetworkConfigList
	loopback *libcni.NetworkConfigList
}

// New checks the configuration and prepares the CNI network lists.
func New(cfg Config) (*Network, error) {
	_, cidr, err := net.ParseCIDR(cfg.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR %q: %w", cfg.PodCIDR, err)
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("network: a data dir is required")
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = []string{DefaultPluginDir}
	}
	podList, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "keelson",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": cfg.Bridge, "isGateway": true,
				"ipMasq": !cfg.NoMasquerade, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": cidr.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(cfg.DataDir, "ipam"),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	})
	if err != nil {
		return nil, err
	}
	pod, err := libcni.ConfListFromBytes(podList)
	if err != nil {
		return nil, fmt.Errorf("pod network config: %w", err)
	}
	lo, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"1.0.0","name":"keelson-lo","plugins":[{"type":"loopback"}]}`))
	if err != nil {
		return nil, fmt.Errorf("loopback config: %w", err)
	}
	return &Network{
		// An explicit exec: libcni makes its default one lazily, unsafely for
		// concurrent first use by several pods.
		cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.DataDir, "cache"), &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		pod:      pod,
		loopback: lo,
	}, nil
}

func runtimeConf(podID, netns, ifName string, ports []PortMapping) *libcni.RuntimeConf {
	rc := &libcni.RuntimeConf{ContainerID: podID, NetNS: netns, IfName: ifName}
	if len(ports) > 0 {
		rc.CapabilityArgs = map[string]any{"portMappings": ports}
	}
	return rc
}

// Setup brings up loopback and eth0 in the pod's namespace and returns the
// pod's IP.
func (n *Network) Setup(ctx context.Context, podID, netns string, ports []PortMapping) (net.IP, error) {
	if _, err := n.cni.AddNetworkList(ctx, n.loopback, runtimeConf(podID, netns, "lo", nil)); err != nil {
		return nil, fmt.Errorf("CNI loopback for pod %s: %w", podID, err)
	}
	res, err := n.cni.AddNetworkList(ctx, n.pod, runtimeConf(podID, netns, "eth0", ports))
	if err != nil {
		return nil, fmt.Errorf("CNI network for pod %s: %w", podID, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("CNI result for pod %s: %w", podID, err)
	}
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			return ip.Address.IP, nil
		}
	}
	if len(r.IPs) > 0 {
		return r.IPs[0].Address.IP, nil
	}
	return nil, fmt.Errorf("CNI gave pod %s no IP", podID)
}

// Teardown releases what Setup made: the pod's IP, its veth and its port
// mappings. It is safe to call again, and when the namespace is gone.
func (n *Network) Teardown(ctx context.Context, podID, netns string, ports []PortMapping) error {
	if err := n.cni.DelNetworkList(ctx, n.pod, runtimeConf(podID, netns, "eth0", ports)); err != nil {
		return fmt.Errorf("CNI teardown of pod %s: %w", podID, err)
	}
	return nil
}
