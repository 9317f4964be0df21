package pod

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The resolver's limits, which the kubelet enforces too: glibc reads three
// nameservers, and search lists longer than these are cut.
const (
	maxNameservers   = 3
	maxSearchDomains = 32
	maxSearchChars   = 2048
)

// resolver is what a resolv.conf says.
type resolver struct {
	nameservers []string
	searches    []string
	options     []string // "name" or "name:value", in order
}

// parseResolvConf reads the lines of a resolv.conf that matter to pods;
// comments and unknown lines are skipped, as the C library skips them.
func parseResolvConf(b []byte) resolver {
	var r resolver
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			r.nameservers = append(r.nameservers, f[1])
		case "search", "domain":
			// The last of search and domain wins.
			r.searches = append([]string(nil), f[1:]...)
		case "options":
			r.options = append(r.options, f[1:]...)
		}
	}
	return r
}

// resolvConf writes the pod's /etc/resolv.conf as its dnsPolicy says:
//   - ClusterFirst (the default): cluster DNS, searching the pod's namespace,
//     svc.<domain> and <domain> before the node's own search domains, with
//     ndots:5; a hostNetwork pod gets the node's file instead, as in
//     Kubernetes.
//   - ClusterFirstWithHostNet: cluster DNS, hostNetwork or not.
//   - Default: the node's resolv.conf.
//   - None: spec.dnsConfig alone.
//
// spec.dnsConfig's nameservers and searches are added after the policy's,
// its options replace those of the same name. Without cluster DNS (the
// agent's --cluster-dns empty) the cluster policies fall back to Default.
func (r *Runner) resolvConf(p *corev1.Pod) (string, error) {
	var conf resolver
	if p.Spec.DNSPolicy != corev1.DNSNone {
		b, err := os.ReadFile(r.cfg.ResolvConf)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("read %s: %w", r.cfg.ResolvConf, err)
		}
		conf = parseResolvConf(b)
		if r.clusterFirst(p) {
			d := r.cfg.ClusterDomain
			conf = resolver{
				nameservers: slices.Clone(r.cfg.ClusterDNS),
				searches:    appendNew([]string{p.Namespace + ".svc." + d, "svc." + d, d}, conf.searches...),
				options:     []string{"ndots:5"},
			}
		}
	}
	if dc := p.Spec.DNSConfig; dc != nil {
		conf.nameservers = appendNew(conf.nameservers, dc.Nameservers...)
		conf.searches = appendNew(conf.searches, dc.Searches...)
		for _, o := range dc.Options {
			conf.options = setOption(conf.options, o)
		}
	}
	return conf.String(), nil
}

func (r *Runner) clusterFirst(p *corev1.Pod) bool {
	if len(r.cfg.ClusterDNS) == 0 {
		return false
	}
	switch p.Spec.DNSPolicy {
	case corev1.DNSClusterFirstWithHostNet:
		return true
	case corev1.DNSClusterFirst, "":
		return !p.Spec.HostNetwork
	}
	return false
}

func appendNew(list []string, more ...string) []string {
	for _, s := range more {
		if s != "" && !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// setOption replaces the option of o's name, or adds it.
func setOption(opts []string, o corev1.PodDNSConfigOption) []string {
	v := o.Name
	if o.Value != nil {
		v += ":" + *o.Value
	}
	for i, have := range opts {
		if name, _, _ := strings.Cut(have, ":"); name == o.Name {
			opts[i] = v
			return opts
		}
	}
	return append(opts, v)
}

// String renders the file, within the resolver's limits.
func (c resolver) String() string {
	var b strings.Builder
	searches := c.searches
	for len(searches) > maxSearchDomains || len(strings.Join(searches, " ")) > maxSearchChars {
		searches = searches[:len(searches)-1]
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	for i, ns := range c.nameservers {
		if i == maxNameservers {
			break
		}
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(c.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(c.options, " "))
	}
	return b.String()
}
