package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/logs"
	"github.com/keelson/keelson/agent/network"
	"github.com/keelson/keelson/agent/pod"
	"github.com/keelson/keelson/agent/proxy"
	"github.com/keelson/keelson/agent/registry"
	"github.com/keelson/keelson/agent/route"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/internal/servicenet"
)

type agentOptions struct {
	servers      []string
	tokenFile    string
	caFile       string
	nodeName     string
	hostIP       string
	socket       string
	dataDir      string
	podCIDR      string
	cniBinDir    string
	noMasquerade bool
	listen       string
	bridge       string
	clusterDNS   []string
	domain       string
	serviceProxy bool
	proxyTable   string
	ingressHTTP  string
	ingressHTTPS string
	cleanup      bool
	localPath    string
	localCap     string
	registries   string
	evictionHard string
	runtime      string
	nodes        int
}

func newAgentCmd(g *globalFlags) *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent: register this machine and run the pods bound to it",
		Long: `Run a node agent. It joins a keelson server through its API with a node token
(a line 'TOKEN,system:node:NAME,UID,"system:nodes"' in the server's token file),
registers this machine as a Node, and runs the pods the scheduler binds to it
with containerd and CNI.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runAgent(cmd.Context(), o, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.runtime, "runtime", runtimeContainerd, "what runs pods: containerd, or simulated (no containers: nodes that register, renew their leases and report their pods Running, to load a control plane as many machines would)")
	f.IntVar(&o.nodes, "nodes", 1, "with --runtime simulated: how many nodes this process simulates, NODE-NAME-0…; --token-file then holds one token per node, a line each")
	f.StringSliceVar(&o.servers, "server", []string{"https://127.0.0.1:7443"}, "keelson API URL; with several servers, give each (comma-separated or repeated): the agent uses one and fails over to the next when it cannot be reached")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding this node's bearer token (required)")
	f.StringVar(&o.caFile, "ca-file", "", "CA that signed the API's certificate (empty: the system's roots)")
	f.StringVar(&o.dataDir, "data-dir", filepath.Join(defaultDataDir(), "agent"), "where the agent keeps pods' files and network state")
	f.StringVar(&o.listen, "listen", ":10250", "the agent's HTTPS endpoint (container logs), which only the API server calls")
	// keelson up takes these from the server's --service-cidr and
	// --cluster-domain.
	f.StringSliceVar(&o.clusterDNS, "cluster-dns", []string{defaultClusterDNS()}, "cluster DNS addresses that pods with dnsPolicy ClusterFirst use (empty: the node's resolvers)")
	f.StringVar(&o.domain, "cluster-domain", servicenet.DefaultClusterDomain, "the cluster's DNS zone, in pods' search paths")
	f.BoolVar(&o.cleanup, "cleanup", false, "remove the node proxy's nftables table and the routes to other nodes' pods, then exit (to uninstall)")
	o.addNodeFlags(f)
	return cmd
}

// addNodeFlags adds the flags about this machine, which `keelson up` shares.
func (o *agentOptions) addNodeFlags(f *pflag.FlagSet) {
	host, _ := os.Hostname()
	f.StringVar(&o.nodeName, "node-name", strings.ToLower(host), "this node's name")
	f.StringVar(&o.hostIP, "host-ip", "", "this node's address (default: the first address of an interface that is up)")
	f.StringVar(&o.socket, "containerd-socket", "/run/containerd/containerd.sock", "containerd's socket")
	f.StringVar(&o.podCIDR, "pod-cidr", "", "this node's pod addresses (default: the /24 the control plane assigns the Node)")
	f.StringVar(&o.cniBinDir, "cni-bin-dir", network.DefaultPluginDir, "CNI plugin binaries")
	f.BoolVar(&o.noMasquerade, "no-masquerade", false, "do not NAT pod traffic leaving the node")
	f.StringVar(&o.bridge, "cni-bridge", network.DefaultBridge, "the node's bridge for pod networking")
	f.BoolVar(&o.serviceProxy, "service-proxy", true, "run the node proxy (services' cluster IPs and node ports, in nftables) and the routes to other nodes' pods")
	f.StringVar(&o.proxyTable, "nftables-table", proxy.DefaultTable, "the node proxy's nftables table (ip family); another name lets several agents share a machine")
	f.StringVar(&o.ingressHTTP, "ingress-http", ":80", "where the ingress proxy serves plain HTTP (HTTP/1.1 and h2c) for Ingresses; empty: none")
	f.StringVar(&o.ingressHTTPS, "ingress-https", ":443", "where the ingress proxy serves HTTPS (HTTP/1.1 and HTTP/2, certificates from the Ingresses' TLS Secrets); empty: none")
	f.StringVar(&o.localPath, "local-path-dir", "", "where this node keeps the directories of its local-path claims (default: storage beside the agent's data dir)")
	f.StringVar(&o.localCap, "local-path-capacity", "", "how much storage this node gives local-path claims, e.g. 50Gi (default: the size of --local-path-dir's file system)")
	f.StringVar(&o.evictionHard, "eviction-hard", agent.DefaultEvictionHard, "hard eviction thresholds, as the kubelet's: below one the node reports pressure and evicts pods; signals not given keep their default")
	f.StringVar(&o.registries, "registries-file", "", "the node's registries file (k3s' registries.yaml format): mirrors, plain-HTTP hosts, TLS and credentials of registries")
}

// defaultClusterDNS is cluster DNS's address in the default service CIDR.
func defaultClusterDNS() string {
	c, _ := servicenet.ParseCIDR(servicenet.DefaultServiceCIDR) // a constant that parses
	return c.DNSIP().String()
}

// runAgent wires the agent's parts and runs it until ctx ends.
func runAgent(ctx context.Context, o *agentOptions, log *slog.Logger) error {
	if o.cleanup {
		return cleanupNode(o, log)
	}
	if o.tokenFile == "" {
		return fmt.Errorf("--token-file is required: the node's token from the server's token file")
	}
	switch o.runtime {
	case runtimeContainerd, "": // "": keelson up's node
		if o.nodes > 1 {
			return fmt.Errorf("--nodes %d: only simulated nodes (--runtime %s) run several to a process", o.nodes, runtimeSimulated)
		}
	case runtimeSimulated:
		return runHollow(ctx, o, log)
	default:
		return fmt.Errorf("--runtime %q: want %s or %s", o.runtime, runtimeContainerd, runtimeSimulated)
	}
	token, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return fmt.Errorf("node token: %w", err)
	}
	client, err := agent.NewClient(o.servers, string(token), o.caFile, log)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find keelson's own binary, the containers' logging binary: %w", err)
	}
	driver := logs.DriverBinary(self)
	if driver == self {
		log.Warn("keelson-logger is not beside keelson: keelson itself is each container's logging binary, at some 9 MiB of memory per container", "want", logs.LoggerName)
	}
	rtOpts := []containerd.Option{containerd.WithLogDriver(driver)}
	if o.registries != "" {
		regs, err := registry.Load(o.registries)
		if err != nil {
			return err
		}
		rtOpts = append(rtOpts, containerd.WithRegistries(regs))
	}
	rt, err := containerd.New(ctx, o.socket, containerd.DefaultNamespace, rtOpts...)
	if err != nil {
		return err
	}
	defer rt.Close()
	ver, err := rt.Version(ctx)
	if err != nil {
		return fmt.Errorf("containerd at %s does not answer (is it running? --containerd-socket): %w", o.socket, err)
	}
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return fmt.Errorf("agent data dir %s is not writable (%w): choose another with --data-dir", o.dataDir, err)
	}
	newNetwork := func(podCIDR string) (pod.Network, error) {
		return network.New(network.Config{
			PodCIDR: podCIDR, PluginDirs: []string{o.cniBinDir}, Bridge: o.bridge,
			// With the node proxy, it masquerades pod traffic leaving the
			// pod network, not the bridge, which would also hide pod
			// addresses from pods of other nodes.
			DataDir: filepath.Join(o.dataDir, "cni"), NoMasquerade: o.noMasquerade || o.serviceProxy,
		})
	}
	hostIP := o.hostIP
	if hostIP == "" {
		hostIP = firstAddress()
	}
	localDir := o.localPath
	if localDir == "" {
		localDir = filepath.Join(filepath.Dir(filepath.Clean(o.dataDir)), "storage") // <data dir>/storage beside <data dir>/agent
	}
	eviction, err := agent.ParseEviction(o.evictionHard)
	if err != nil {
		return fmt.Errorf("--eviction-hard: %w", err)
	}
	var localCap int64
	if o.localCap != "" {
		q, err := resource.ParseQuantity(o.localCap)
		if err != nil || q.Sign() <= 0 {
			return fmt.Errorf("--local-path-capacity %q: want a size such as 50Gi", o.localCap)
		}
		localCap = q.Value()
	}
	_, portStr, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", o.listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--listen %q: the port must be a number", o.listen)
	}
	a, err := agent.New(agent.Config{
		Client: client, Runtime: rt, RuntimeVersion: "containerd://" + ver, NewNetwork: newNetwork,
		NodeName: o.nodeName, HostIP: hostIP, PodCIDR: o.podCIDR, RootDir: o.dataDir, Logger: log,
		LocalPathDir: localDir, LocalPathCapacity: localCap, Eviction: eviction,
		Port: int32(port), ClusterDNS: o.clusterDNS, ClusterDomain: o.domain,
		ServiceProxy: o.serviceProxy, ProxyTable: o.proxyTable, Masquerade: !o.noMasquerade,
		IngressHTTP: o.ingressHTTP, IngressHTTPS: o.ingressHTTPS,
	})
	if err != nil {
		return err
	}
	log.Info("agent starting", "node", o.nodeName, "servers", strings.Join(o.servers, ","), "containerd", ver, "host_ip", hostIP, "listen", o.listen)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	go func() { serveErr <- agent.Serve(ctx, o.listen, o.nodeName, a.Handler(string(token))) }()
	runErr := a.Run(ctx)
	cancel()
	return errors.Join(runErr, <-serveErr)
}

// firstAddress is the first IPv4 address of an interface that is up and not
// loopback or keelson's own bridge: the node's address on its network.
func firstAddress() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || ifc.Name == network.DefaultBridge || strings.HasPrefix(ifc.Name, "veth") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// cleanupNode removes what the agent programmed in the kernel outside pods:
// the node proxy's table and the routes to other nodes' pods. Pods and
// their containers are left alone.
func cleanupNode(o *agentOptions, log *slog.Logger) error {
	if err := proxy.Cleanup("", o.proxyTable); err != nil {
		return fmt.Errorf("remove nftables table %s: %w", o.proxyTable, err)
	}
	log.Info("removed the node proxy's rules", "table", o.proxyTable)
	if err := route.Cleanup(""); err != nil {
		return fmt.Errorf("remove the routes to other nodes' pods: %w", err)
	}
	log.Info("removed the routes to other nodes' pods")
	return nil
}
