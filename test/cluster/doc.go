// Package cluster makes keelson clusters of several hosts on one machine,
// for tests that prove keelson beyond one machine: real etcd members, keelson
// servers and agents as processes of their own, each host with its own
// address on one network, each agent with its own containerd.
//
// A host is a network namespace plugged into a switch: a bridge in a
// namespace of its own, so that nothing of the machine's own network
// changes. Hosts are h1, h2, … at 10.99.0.11, .12, …; the test process
// reaches them from the switch's namespace (Cluster.Dial). etcd members
// speak TLS to one another and to their clients (a CA of the test), servers
// share the API's CA and token file as an operator copies them, and agents
// are given every server's URL:
//
//	cl := cluster.New(t, cluster.Config{
//		Hosts: 3, Etcd: 3, Servers: 2, Agents: 2,
//		Binary: keelson, Repo: repoDir, Path: "deploy", Images: []string{busyboxTar},
//	})
//	leader := cl.Leader(t)
//	leader.Server.Kill(t)      // as a crash does
//	cl.Cut(t, cl.Host("h3"))   // as a pulled cable does
//
// # The same cluster by hand
//
// As root, with Debian's etcd-server, containerd and runc, the layout New
// makes is, for host h1 at 10.99.0.11 (repeat for h2, h3 with .12, .13):
//
//	ip netns add sw && ip -n sw link add sw0 type bridge
//	ip -n sw addr add 10.99.0.1/24 dev sw0 && ip -n sw link set sw0 up
//	ip netns add h1
//	ip link add vh1 netns sw type veth peer name eth0 netns h1
//	ip -n sw link set vh1 master sw0 up
//	ip -n h1 addr add 10.99.0.11/24 dev eth0
//	ip -n h1 link set eth0 up && ip -n h1 link set lo up
//	ip -n h1 route add default via 10.99.0.1
//
// Then each host runs its processes with `ip netns exec hN …`: an etcd
// member (--listen-client-urls https://10.99.0.11:2379, the peer URL on
// 2380, --initial-cluster naming all three, --client-cert-auth and
// --peer-client-cert-auth with certificates for the host's address), a
// server on h1 and h2:
//
//	keelson server --listen 10.99.0.11:7443 --advertise-address 10.99.0.11 \
//	  --etcd-endpoints https://10.99.0.11:2379,https://10.99.0.12:2379,https://10.99.0.13:2379 \
//	  --etcd-cert client.crt --etcd-key client.key --etcd-ca etcd-ca.crt \
//	  --token-auth-file tokens.csv --encryption-key-file encryption-keys.yaml \
//	  --repo /srv/cluster.git --path deploy
//
// with the same <data-dir>/tls/ca.crt and ca.key copied into each server's
// data dir before its first start (and one encryption-keys.yaml for all), and an agent with a containerd of its
// own on h2 and h3:
//
//	keelson agent --server https://10.99.0.11:7443,https://10.99.0.12:7443 \
//	  --ca-file ca.crt --token-file h3.token --node-name h3 --host-ip 10.99.0.13 \
//	  --listen 10.99.0.13:10250 --containerd-socket /run/h3/containerd.sock
//
// The README's "High availability" section is the same install on real
// machines.
package cluster
