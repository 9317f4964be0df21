// Package pod runs one pod on this node: its sandbox (a network namespace wired
// through CNI, with the pod's hostname, /etc/hosts and /etc/resolv.conf), its
// init containers in order, then its containers, and reports the pod's status
// the way Kubernetes does. Runner.Sync is level-triggered: it reads what the
// runtime has for the pod every time, so an agent that restarts re-adopts
// running containers instead of starting them again.
package pod
