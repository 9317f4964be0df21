// Package network gives pods their network: a network namespace per pod, set up
// through CNI (libcni with the standard plugins: a bridge, host-local IP
// addresses from the node's pod CIDR, and portmap for hostPorts), its
// loopback brought up by keelson.
package network
