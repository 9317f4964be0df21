package gitsync

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/internal/servicenet"
)

// portClaims records who asks for each node port, and which are taken.
type portClaims struct {
	by   map[int32]*svcEntry
	used map[int32]bool
	// need is how many node ports the revision's changed services need
	// allocated, first the first of them; pending those its unchanged
	// services still wait for.
	need    int
	first   *svcEntry
	pending int
}

// nodePorts checks the node ports the revision asks for, and that there are
// enough free ports for those to allocate.
func (a *allocCheck) nodePorts() {
	pc := &portClaims{by: map[int32]*svcEntry{}, used: map[int32]bool{}}
	for p := range a.view.nodePorts {
		if a.ports.Contains(p) {
			pc.used[p] = true
		}
	}
	// Unchanged services first: their ports are taken whatever the order of
	// the files.
	for _, e := range a.entries {
		if e.changed || e.want == nil {
			continue
		}
		for _, p := range wantedNodePorts(e.want) {
			if p.port == 0 {
				pc.pending++
				continue
			}
			if pc.by[p.port] == nil {
				pc.by[p.port] = e
			}
			if a.ports.Contains(p.port) {
				pc.used[p.port] = true
			}
		}
	}
	for _, e := range a.entries {
		if e.changed && e.want != nil {
			a.serviceNodePorts(e, pc)
		}
	}
	if pc.need == 0 {
		return
	}
	if free := a.ports.Size() - len(pc.used); pc.need+pc.pending > free {
		a.fail(pc.first, "", "node port range %s is full: %s of this revision %s a node port, %s free",
			a.ports, count(pc.need+pc.pending, "port", "ports"), needs(pc.need+pc.pending), isAre(max(free, 0)))
	}
}

// serviceNodePorts checks the node ports of one service the revision
// creates or changes.
func (a *allocCheck) serviceNodePorts(e *svcEntry, pc *portClaims) {
	w := e.want
	if !servicenet.HasNodePorts(w) {
		for i, p := range w.Spec.Ports {
			if p.NodePort != 0 {
				a.fail(e, fmt.Sprintf("spec.ports[%d].nodePort", i), "%d: a service of type %s has no node ports; remove the field, or make the type NodePort", p.NodePort, w.Spec.Type)
			}
		}
		return
	}
	held := map[int32]bool{}
	if e.cur != nil {
		for _, p := range wantedNodePorts(e.cur) {
			held[p.port] = true
		}
	}
	type use struct {
		port  int32
		proto corev1.Protocol
	}
	seen := map[use]bool{}
	for _, p := range wantedNodePorts(w) {
		switch {
		case p.port == 0:
			if pc.need++; pc.first == nil {
				pc.first = e
			}
			continue
		case p.index >= 0:
			// One node port may serve a TCP and a UDP port of the same
			// service, not two ports of one protocol, whatever lies
			// between them.
			u := use{p.port, p.protocol}
			if seen[u] {
				a.fail(e, p.path, "%d is given to another %s port of the service too; give each port its own node port", p.port, p.protocol)
				continue
			}
			seen[u] = true
		}
		if held[p.port] {
			pc.by[p.port], pc.used[p.port] = e, true
			continue
		}
		a.claimPort(e, p.path, p.port, pc)
	}
}

// claimPort checks one node port written in Git for a service that does not
// hold it yet.
func (a *allocCheck) claimPort(e *svcEntry, path string, port int32, pc *portClaims) {
	if !a.ports.Contains(port) {
		a.fail(e, path, "%d is outside the node port range %s: write a port in it, or leave the field out to get one", port, a.ports)
		return
	}
	if ref, ok := a.view.nodePorts[port]; ok && ref != e.ref {
		a.fail(e, path, "%d is held by service %s", port, ref)
		return
	}
	if f := pc.by[port]; f != nil && f != e {
		a.fail(e, path, "%d is asked for by service %s too (%s); give each service its own node port", port, f.ref, f.origin())
		return
	}
	pc.by[port], pc.used[port] = e, true
}

// nodePortOf is one node port a service has or needs: of a port
// (index >= 0) or the health check's (index -1); port 0 is one to allocate.
type nodePortOf struct {
	index    int
	path     string
	port     int32
	protocol corev1.Protocol
}

// wantedNodePorts lists the node ports s has, and those it needs
// allocated (port 0): none for a type without node ports, and none for a
// port that will share the node port of the port of its number and another
// protocol, as the allocator does. A health check node port is listed only
// when written: the allocator does not give them.
func wantedNodePorts(s *corev1.Service) []nodePortOf {
	var out []nodePortOf
	if servicenet.HasNodePorts(s) {
		ports := s.Spec.Ports
		for i, p := range ports {
			if p.NodePort == 0 && (!servicenet.AllocatesNodePorts(s) || sharesNodePort(ports, i)) {
				continue
			}
			out = append(out, nodePortOf{index: i, path: fmt.Sprintf("spec.ports[%d].nodePort", i), port: p.NodePort, protocol: p.Protocol})
		}
	}
	if needsHealthCheckPort(s) && s.Spec.HealthCheckNodePort != 0 {
		out = append(out, nodePortOf{index: -1, path: "spec.healthCheckNodePort", port: s.Spec.HealthCheckNodePort})
	}
	return out
}

// sharesNodePort reports whether port i, which has no node port, gets the
// one of another port of its number and another protocol: one that has a
// node port, or comes first and gets one.
func sharesNodePort(ports []corev1.ServicePort, i int) bool {
	for j, o := range ports {
		if j != i && o.Port == ports[i].Port && o.Protocol != ports[i].Protocol && (o.NodePort != 0 || j < i) {
			return true
		}
	}
	return false
}
