package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/keelson/keelson/clusterdns"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/reconciler"
	"github.com/keelson/keelson/store"
)

// Defaults of the control plane's service flags.
const (
	// defaultClusterDNSAddr is where cluster DNS listens on the control
	// plane's host. Pods ask 10.43.0.10:53, which the node proxy sends here:
	// a port of its own, so that a resolver of the host on 53 does not clash.
	defaultClusterDNSAddr = ":10053"
)

// serviceFlags are the server's flags about the service network beside
// --service-cidr and --service-node-port-range.
type serviceFlags struct {
	advertise     string
	dnsAddr       string
	clusterDomain string
	dnsUpstreams  []string
}

func (s *serviceFlags) add(f *pflag.FlagSet) {
	f.StringVar(&s.advertise, "advertise-address", "", "the address pods and nodes reach this server at: the endpoint of the kubernetes and kube-dns services (default: the first address of an interface that is up)")
	f.StringVar(&s.dnsAddr, "cluster-dns-addr", defaultClusterDNSAddr, "where cluster DNS listens, UDP and TCP; pods reach it as the kube-dns service (10.43.0.10:53); empty: no cluster DNS")
	f.StringVar(&s.clusterDomain, "cluster-domain", servicenet.DefaultClusterDomain, "the cluster's DNS zone")
	f.StringSliceVar(&s.dnsUpstreams, "dns-upstream", nil, "resolvers (ip:port) of names outside the cluster zone (default: the nameservers of /etc/resolv.conf; \"none\": no forwarding)")
}

// serviceOptions is what the controllers need to allocate cluster IPs and
// node ports and to publish the kubernetes and kube-dns services' endpoints.
func (o *serverOptions) serviceOptions(log *slog.Logger) (reconciler.ServiceOptions, error) {
	opts := reconciler.ServiceOptions{CIDR: o.serviceCIDR.String(), NodePortRange: o.nodePortRange.String()}
	addr := o.services.advertise
	if addr == "" {
		addr = firstAddress()
	}
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is4() {
		return opts, fmt.Errorf("--advertise-address %q: want an IPv4 address", addr)
	}
	if a.IsLoopback() {
		// A pod's loopback is its own: endpoints there would send pods to
		// themselves. Without any other address, none is published.
		log.Warn("the kubernetes and kube-dns services have no endpoint: the advertise address is a loopback address, which pods do not reach (give --advertise-address)", "advertise_address", addr)
		return opts, nil
	}
	opts.Address = a.String()
	if isLoopback(o.listen) {
		log.Info("the kubernetes service has no endpoint: the API listens on a loopback address only (--listen 0.0.0.0:7443 lets pods reach it)", "listen", o.listen)
	} else if opts.APIPort, err = portOf(o.listen); err != nil {
		return opts, fmt.Errorf("--listen %q: %w", o.listen, err)
	}
	switch {
	case o.services.dnsAddr == "":
	case isLoopback(o.services.dnsAddr):
		log.Info("the kube-dns service has no endpoint: cluster DNS listens on a loopback address only, which pods do not reach", "cluster_dns_addr", o.services.dnsAddr)
	default:
		if opts.DNSPort, err = portOf(o.services.dnsAddr); err != nil {
			return opts, fmt.Errorf("--cluster-dns-addr %q: %w", o.services.dnsAddr, err)
		}
	}
	return opts, nil
}

func portOf(addr string) (int32, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q: want 1-65535", p)
	}
	return int32(n), nil
}

// startClusterDNS binds cluster DNS on --cluster-dns-addr and serves it from
// informers over the store until ctx ends; the returned func waits for it.
// Every server answers, leader or not: the index is each process's own.
func startClusterDNS(ctx context.Context, o *serverOptions, st *store.Store, reg prometheus.Registerer, log *slog.Logger) (func() error, error) {
	if o.services.dnsAddr == "" {
		log.Info("no --cluster-dns-addr: cluster DNS is off")
		return func() error { return nil }, nil
	}
	var upstreams []string
	switch {
	case len(o.services.dnsUpstreams) == 1 && o.services.dnsUpstreams[0] == "none":
		upstreams = []string{}
	case len(o.services.dnsUpstreams) > 0:
		upstreams = o.services.dnsUpstreams
	}
	inf := reconciler.NewInformers(st, 0, log)
	svcs, err := store.ResourceByName("services")
	if err != nil {
		return nil, err
	}
	slices, err := store.ResourceByName("endpointslices.discovery.k8s.io")
	if err != nil {
		return nil, err
	}
	srv, err := clusterdns.New(clusterdns.Config{
		Services: inf.For(svcs), EndpointSlices: inf.For(slices),
		Domain: o.services.clusterDomain, Addr: o.services.dnsAddr, Upstreams: upstreams,
		ServiceCIDR: o.serviceCIDR.String(), Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		return nil, fmt.Errorf("cluster DNS: %w (choose another address with --cluster-dns-addr)", err)
	}
	inf.Start(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	log.Info("cluster DNS serving", "addr", srv.Addr().String(), "domain", o.services.clusterDomain)
	return func() error { return <-done }, nil
}
