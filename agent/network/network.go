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
	"github.com/vishvananda/netlink"
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
	cni          *libcni.CNIConfig
	pod          *libcni.NetworkConfigList
	podWithPorts *libcni.NetworkConfigList
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
	bridge := map[string]any{
		"type": "bridge", "bridge": cfg.Bridge, "isGateway": true,
		"ipMasq": !cfg.NoMasquerade, "hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": cidr.String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": filepath.Join(cfg.DataDir, "ipam"),
		},
	}
	portmap := map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true}
	// Earlier agents brought loopback up with CNI's plugin, whose cached
	// results no teardown removed.
	old, _ := filepath.Glob(filepath.Join(cfg.DataDir, "cache", "results", "keelson-lo-*"))
	for _, f := range old {
		os.Remove(f)
	}
	pod, err := confList(bridge)
	if err != nil {
		return nil, err
	}
	withPorts, err := confList(bridge, portmap)
	if err != nil {
		return nil, err
	}
	return &Network{
		// An explicit exec: libcni makes its default one lazily, unsafely for
		// concurrent first use by several pods.
		cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.DataDir, "cache"), &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		pod:          pod,
		podWithPorts: withPorts,
	}, nil
}

// confList is the pod network of these plugins. Both of keelson's lists
// are named keelson: CNI's cache knows a pod's network by name, whichever
// list set it up.
func confList(plugins ...map[string]any) (*libcni.NetworkConfigList, error) {
	b, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "keelson", "plugins": plugins})
	if err != nil {
		return nil, err
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("pod network config: %w", err)
	}
	return l, nil
}

// list is the network list of a pod with these port mappings: portmap
// runs only for a pod with hostPorts, as it has nothing to do for others
// and costs a process at every start and stop.
func (n *Network) list(ports []PortMapping) *libcni.NetworkConfigList {
	if len(ports) > 0 {
		return n.podWithPorts
	}
	return n.pod
}

func runtimeConf(podID, netns, ifName string, ports []PortMapping) *libcni.RuntimeConf {
	rc := &libcni.RuntimeConf{ContainerID: podID, NetNS: netns, IfName: ifName}
	if len(ports) > 0 {
		rc.CapabilityArgs = map[string]any{"portMappings": ports}
	}
	return rc
}

// Setup brings up loopback and eth0 in the pod's namespace and returns the
// pod's IP. Loopback is keelson's own (a link brought up, as containerd's
// CRI does with use_internal_loopback): the loopback plugin would cost a
// process per pod, and an entry in CNI's cache no teardown removes.
func (n *Network) Setup(ctx context.Context, podID, netns string, ports []PortMapping) (net.IP, error) {
	if err := loopbackUp(netns); err != nil {
		return nil, fmt.Errorf("loopback of pod %s: %w", podID, err)
	}
	res, err := n.cni.AddNetworkList(ctx, n.list(ports), runtimeConf(podID, netns, "eth0", ports))
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
	if err := n.cni.DelNetworkList(ctx, n.list(ports), runtimeConf(podID, netns, "eth0", ports)); err != nil {
		return fmt.Errorf("CNI teardown of pod %s: %w", podID, err)
	}
	return nil
}

// loopbackUp brings up lo in the network namespace at path.
func loopbackUp(path string) error {
	return InNetNS(path, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
}
