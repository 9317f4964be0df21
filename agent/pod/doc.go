// Package pod runs the pods of this node: for each, its sandbox (a network
// namespace wired through CNI, with the pod's hostname, /etc/hosts and
// /etc/resolv.conf), its volumes, its images, its init containers in order,
// then its containers with their probes and hooks, and reports the pod's
// status the way Kubernetes does.
//
// Runner.Sync is level-triggered: it reads what the runtime has for the pod
// (by the pod's label, never the node's other containers) every time, so an
// agent that restarts re-adopts running containers instead of starting them
// again. What a pod's steps must remember between syncs (why a start failed,
// its probe workers, its image pulls and their back-off, its volumes'
// service account tokens) lives in the pod's own runner, made on its first
// sync and stopped by Kill, which ends its goroutines before its containers
// stop; Close stops every pod's. Each step is a file: sandbox.go, volumes.go
// with projected.go and token.go, pull.go and credentials.go, containers.go,
// probe.go, status.go; events.go records what the kubelet would tell of
// each.
//
// A projected serviceAccountToken source holds a token bound to the pod,
// obtained through the Lookup and kept until 80% of its lifetime has
// passed, as the kubelet does; WakeAfter tells when the next is due, and
// the volume's files are swapped for the new token at once, in memory.
//
// Image pulls run in the background, one per image across pods; a pod
// presents the credentials of its image pull secrets and its
// ServiceAccount's, and the runtime reaches the registry through the
// node's registries file (package registry).
package pod
