// Package clusterdns is keelson's cluster DNS server: the control plane
// answers for the cluster zone (cluster.local) from an in-memory index of
// Services and EndpointSlices kept up to date by informers, and forwards
// other names to the host's resolvers. Pods reach it at the DNS service's
// address (10.43.0.10:53), which the node proxy sends to the server.
//
// The zone holds, as CoreDNS's kubernetes plugin serves them:
//
//	<svc>.<ns>.svc.<zone>              A/AAAA: the cluster IPs; for a headless service the
//	                                   ready endpoints; for an ExternalName a CNAME
//	_<port>._<proto>.<svc>.<ns>.svc.<zone>  SRV of a named port (<svc>... itself: all ports)
//	<host>.<svc>.<ns>.svc.<zone>       A/AAAA of an endpoint, by hostname or dashed address
//	<dashed-ip>.<ns>.pod.<zone>        A/AAAA of the address the name spells
//	<reversed-ip>.in-addr.arpa.        PTR of cluster IPs and endpoint addresses
//
// Names of the zone that do not exist get NXDOMAIN with the zone's SOA, and
// names that exist asked for another type NOERROR with no answer. A query
// costs a few map look-ups whatever the number of services; the index is
// rebuilt one service at a time as informer events come.
//
// The server reads with a fixed number of goroutines, keeps a bounded number
// of forwarded queries and TCP connections, and drops what does not parse,
// so a flood costs packets, not memory.
//
// Usage, with informers of a client-go factory the caller starts:
//
//	factory := informers.NewSharedInformerFactory(client, 0)
//	srv, err := clusterdns.New(clusterdns.Config{
//		Services:       factory.Core().V1().Services().Informer(),
//		EndpointSlices: factory.Discovery().V1().EndpointSlices().Informer(),
//		Addr:           ":53",
//		Logger:         logger,
//		Registerer:     prometheus.DefaultRegisterer,
//	})
//	if err != nil {
//		return err
//	}
//	if err := srv.Listen(); err != nil { // says which address is taken
//		return err
//	}
//	factory.Start(ctx.Done())
//	return srv.Serve(ctx) // until ctx ends
package clusterdns
