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
// `ip route show proto 75` lists them; Cleanup removes them.
package route
