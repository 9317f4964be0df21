// Package route routes other nodes' pod CIDRs to those nodes, host-gw style:
// for every other Node with a spec.podCIDR and an InternalIP, a route
// "podCIDR via InternalIP" in the main table, so that pods talk across nodes
// with their own addresses, without an overlay, when the nodes share one L2
// segment.
//
// The routes carry a route protocol number of keelson's own
// (RouteProtocol), which is how a router finds the routes it (or a previous
// agent) made, removes those of nodes that left, and never touches anyone
// else's:
//
//	r, err := route.New(route.Config{
//		Nodes:    factory.Core().V1().Nodes().Informer(),
//		NodeName: nodeName,
//		OnHealth: setNodeCondition,
//		Logger:   log,
//	})
//	if err != nil {
//		return err
//	}
//	go r.Run(ctx)
//
// `ip route show proto 75` lists them.
//
// Given the Services (Config.Services), the router also makes this node
// answer for the load balancer addresses it is elected for: an address of a
// LoadBalancer service's status that lies on one of the node's networks
// (a pool on the nodes' own segment) is added, as a /32 labelled
// <interface>:lb, to the interface of that network on one node, so that
// the kernel answers ARP for it there and the node proxy takes its
// traffic; gratuitous ARPs (a request and a reply, five times a second
// apart, as MetalLB and keepalived repeat theirs) tell the segment at once,
// so that an address moving from a node that left reaches its new one
// without waiting for the neighbours' entries to expire. Every agent elects the same node from what it sees — of the
// Ready nodes on that network (for externalTrafficPolicy Local, those with
// an endpoint of the service), the one whose name hashes lowest with the
// address — so the addresses spread over the nodes and move when one
// leaves. An address on no network of the node's (a pool routed to the
// nodes) needs no answer: the proxy takes its traffic as it arrives.
//
// Cleanup removes the routes and the addresses.
package route
