// Package proxy is the node proxy: it programs nftables (through netlink,
// github.com/google/nftables) so that traffic to a service's cluster IP and
// node ports reaches the service's endpoints, as kube-proxy does in its
// nftables mode.
//
// Everything lives in one table of keelson's own, `ip keelson`. Base chains
// hook prerouting and output (destination NAT through the service-ips and
// service-nodeports verdict maps), postrouting (masquerade) and input,
// forward and output (rejecting service IPs with no endpoint at once, and on
// input node ports too, through the no-endpoint-* maps). Each service port
// has a chain that spreads connections over its endpoints with `numgen
// random mod N` into a verdict map of endpoint chains (its pick map), and
// each endpoint a chain that DNATs to it:
//
//	svc-XXXXXXXX-ns/name/tcp/http   numgen random mod 3 vmap @pick-svc-XXXXXXXX-ns/name/tcp/http
//	pick-svc-XXXXXXXX-ns/name/tcp/http   { 0 : goto ep-…, 1 : goto ep-…, 2 : goto ep-… }
//	ep-XXXXXXXX-ns/name/tcp/http__10.42.0.7/8080   dnat ip to 10.42.0.7:8080
//
// The addresses a load balancer controller writes into a LoadBalancer
// service's status.loadBalancer take the service's traffic as its node port
// does: their (address . protocol . port) keys in service-ips lead to the
// port's external chain (masquerade, or externalTrafficPolicy Local), and
// with no endpoint to no-endpoint-services. An address of ipMode Proxy is
// the load balancer's own, which proxies to the node ports: it gets no rule.
//
// Every rule carries, as its comment, a digest of what it should be. The
// proxier remembers what it wrote; an informer event marks a service dirty,
// and the next sync rewrites only that service's chains and map elements,
// all in one nftables transaction. A new proxier reads the table a previous
// one left, compares digests and map elements, and changes only what
// differs, so that restarting the agent does not disturb traffic.
//
// Usage, in the agent:
//
//	p, err := proxy.New(proxy.Config{
//		Services:       factory.Core().V1().Services().Informer(),
//		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
//		Nodes:          factory.Core().V1().Nodes().Informer(),
//		NodeName:       nodeName,
//		Masquerade:     !noMasquerade,
//		OnHealth:       setNodeCondition,
//		Logger:         log,
//	})
//	if err != nil {
//		return err
//	}
//	factory.Start(ctx.Done())
//	go p.Run(ctx)
//
// and `keelson agent --cleanup` calls proxy.Cleanup("", proxy.DefaultTable).
package proxy
