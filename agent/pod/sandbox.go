package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/agent/network"
)

func typesUID(s string) types.UID { return types.UID(s) }

// sandbox is what a pod's containers share: the network namespace and the
// files the agent writes for the pod.
type sandbox struct {
	dir      string
	netns    string // empty with hostNetwork
	ipcns    string // empty with hostIPC
	ip       string
	hostname string
	volumes  map[string]string // volume name → host path
	readOnly map[string]bool   // volumes every container mounts read-only (a claim's readOnly)
}

func (sb *sandbox) file(name string) string { return filepath.Join(sb.dir, name) }

// ensureSandbox makes the pod's network namespace and files, or finds them
// from an earlier run. After a reboot the namespace is gone while the files
// remain: the network is set up again.
func (r *Runner) ensureSandbox(ctx context.Context, p *corev1.Pod) (*sandbox, error) {
	sb := &sandbox{dir: r.podDir(p), hostname: hostname(p)}
	if err := os.MkdirAll(sb.file("logs"), 0o755); err != nil {
		return nil, fmt.Errorf("pod dir: %w", err)
	}
	if !p.Spec.HostIPC {
		sb.ipcns = filepath.Join(r.cfg.NetNSDir, string(p.UID)+".ipc")
		if !exists(sb.ipcns) {
			if err := network.NewIPCNS(sb.ipcns); err != nil {
				return nil, err
			}
		}
	}
	if p.Spec.HostNetwork {
		sb.ip = r.cfg.HostIP
	} else {
		sb.netns = filepath.Join(r.cfg.NetNSDir, string(p.UID))
		ip, err := r.ensureNetwork(ctx, p, sb)
		if err != nil {
			return nil, err
		}
		sb.ip = ip
	}
	if err := writeFile(sb.file("hosts"), hostsFile(p, sb)); err != nil {
		return nil, err
	}
	resolv, err := r.resolvConf(p)
	if err != nil {
		return nil, err
	}
	if err := writeFile(sb.file("resolv.conf"), resolv); err != nil {
		return nil, err
	}
	return sb, nil
}

func (r *Runner) ensureNetwork(ctx context.Context, p *corev1.Pod, sb *sandbox) (string, error) {
	ipFile := sb.file("ip")
	_, nsErr := os.Stat(sb.netns)
	if b, err := os.ReadFile(ipFile); err == nil && nsErr == nil && len(b) > 0 {
		return string(b), nil
	}
	ports := hostPorts(p)
	if nsErr == nil {
		// A namespace without a recorded IP: a set-up that failed half-way.
		_ = r.cfg.Network.Teardown(ctx, string(p.UID), sb.netns, ports)
		if err := network.RemoveNetNS(sb.netns); err != nil {
			return "", err
		}
	} else if _, err := os.Stat(ipFile); err == nil {
		// Recorded but the namespace is gone (a reboot): release the old IP.
		_ = r.cfg.Network.Teardown(ctx, string(p.UID), "", ports)
	}
	if err := network.NewNetNS(sb.netns); err != nil {
		return "", err
	}
	ip, err := r.cfg.Network.Setup(ctx, string(p.UID), sb.netns, ports)
	if err != nil {
		return "", err
	}
	if err := writeFile(ipFile, ip.String()); err != nil {
		return "", err
	}
	return ip.String(), nil
}

func (r *Runner) removeSandbox(ctx context.Context, p *corev1.Pod) error {
	dir := r.podDir(p)
	netns := filepath.Join(r.cfg.NetNSDir, string(p.UID))
	var errs []error
	if _, err := os.Stat(filepath.Join(dir, "ip")); err == nil || exists(netns) {
		if err := r.cfg.Network.Teardown(ctx, string(p.UID), netns, hostPorts(p)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range []string{netns, netns + ".ipc"} {
		if err := network.RemoveNetNS(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := tearDownVolumes(dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err // keep the dir: the next try needs the recorded IP
	}
	return os.RemoveAll(dir)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func hostPorts(p *corev1.Pod) []network.PortMapping {
	var out []network.PortMapping
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort == 0 {
				continue
			}
			out = append(out, network.PortMapping{
				HostPort: port.HostPort, ContainerPort: port.ContainerPort,
				Protocol: strings.ToLower(string(port.Protocol)), HostIP: port.HostIP,
			})
		}
	}
	return out
}

// hostname is spec.hostname, else the pod's name, cut to a DNS label.
func hostname(p *corev1.Pod) string {
	h := p.Spec.Hostname
	if h == "" {
		h = p.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

func hostsFile(p *corev1.Pod, sb *sandbox) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file (written by keelson).\n")
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if sb.ip != "" && !p.Spec.HostNetwork {
		fqdn := sb.hostname
		if p.Spec.Subdomain != "" {
			fqdn = fmt.Sprintf("%s.%s.%s.svc.cluster.local\t%s", sb.hostname, p.Spec.Subdomain, p.Namespace, sb.hostname)
		}
		fmt.Fprintf(&b, "%s\t%s\n", sb.ip, fqdn)
	}
	for _, a := range p.Spec.HostAliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.String()
}

// writeFile replaces path atomically, so a container never reads half a file.
func writeFile(path, content string) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		return nil // each sync asks for it again: write only a change
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
