// Package registry says where and how a node pulls images: the endpoints of
// a registry (its mirrors from the node's registries file, then itself), the
// TLS settings and credentials of each, and the credentials of a pod's image
// pull secrets for an image.
//
// The registries file has k3s' registries.yaml format, so files written for
// k3s work unchanged. Plain HTTP is used only for an endpoint whose URL says
// http://: a registry served without TLS is named as its own mirror:
//
//	cfg, err := registry.Load("/etc/keelson/registries.yaml")
//	for _, ep := range cfg.Endpoints("docker.io") { ... } // mirrors, then registry-1.docker.io
//
//	var ring registry.Keyring
//	err = ring.AddDockerConfigJSON(secret.Data[".dockerconfigjson"], "default/pull")
//	creds := ring.Lookup("registry.internal:5000", "team/app")
//
// It imports nothing of keelson and no container runtime: the containerd
// runtime turns its answers into a resolver.
package registry
