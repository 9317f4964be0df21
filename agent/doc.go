// Package agent is the node agent: it registers its Node, runs the pods bound to
// it through containerd and CNI, and reports their state. It talks to the
// control plane only through the API, with client-go; never to etcd.
package agent
