// Package hollow simulates many nodes in one process, to load a control
// plane as thousands of machines would (as Kubernetes' kubemark hollow nodes
// and KWOK do): each node registers its Node (Ready, with a capacity),
// renews its lease every quarter of its duration as the kubelet does, and
// reports the pods bound to it Running and Ready at once, then lets go of
// them when they are deleted. No container runs anywhere.
//
// Every node writes with a client of its own (its own token: the API lets a
// node write only its Node, its lease and its pods); one watch over all pods
// serves every node.
//
//	done, err := hollow.Run(ctx, hollow.Options{Nodes: nodes})
//
// `keelson agent --runtime simulated --nodes N` runs it.
package hollow
