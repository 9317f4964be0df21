// Package agent is the node agent: it registers its Node, runs the pods bound to
// it through containerd and CNI, and reports their state. It talks to the
// control plane only through the API, with client-go; never to etcd.
//
// Its Node tells the truth: Ready only while containerd answers and the
// pod network exists, pressure conditions against the --eviction-hard
// thresholds, the images on the node (which the scheduler's image locality
// reads). The pods' events go through client-go's recorder, which folds
// repeats into counts and rate-limits them as upstream does.
//
// It is also the node's half of local-path storage: for each claim of the
// local-path class that the scheduler chose this node for, it makes a
// directory under its local-path directory and a PersistentVolume of it,
// set aside for the claim and reachable only from this node; when such a
// volume is deleted, it removes the directory and then the volume's
// finalizer. Its Node announces the capacity it gives such claims
// (keelson.dev/local-path-capacity), which the scheduler counts.
//
// Beside the pods it runs the node's network: the node proxy (package
// proxy: services' cluster IPs, node ports and load balancer addresses in
// nftables), the routes to other nodes' pods and the answers to ARP for the
// load balancer addresses this node is elected for (package route), and
// the ingress proxy (package ingress) on --ingress-http and
// --ingress-https, which its Node announces (keelson.dev/ingress-proxy)
// while it listens.
package agent
