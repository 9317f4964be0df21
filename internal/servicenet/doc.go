// Package servicenet holds what every part of keelson agrees on about the
// service network: the service CIDR that cluster IPs come from, the node port
// range, the addresses and names reserved in them (the kubernetes service on
// the first address, cluster DNS on the tenth), and the cluster domain.
//
// The reconciler allocates from these ranges, gitsync checks a commit
// against them before it applies anything, the agent's proxy and the
// cluster DNS serve them:
//
//	cidr, err := servicenet.ParseCIDR(servicenet.DefaultServiceCIDR)
//	if err != nil {
//		return err
//	}
//	dns := cidr.DNSIP() // 10.43.0.10
package servicenet
