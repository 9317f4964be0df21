// Package schema holds the CUE definitions of every kind keelson accepts, fills
// in Kubernetes' defaults, and validates manifests with errors that name
// file:line:column and the field. It imports nothing else of keelson and never
// touches etcd, Git or the network.
//
// The definitions live in cue/: cue.mod/gen holds the types generated from
// k8s.io/api by `make schema` (do not edit), and cue/kinds narrows them with
// the rules Kubernetes enforces (names, labels, ports, enums, quantities) into
// one closed definition per kind, #Deployment, #Service, and so on; keelson's
// own kinds (NodePolicy, keelson.dev/v1alpha1) are defined by hand in
// cue/kinds/keelson.cue and decode into package api/v1alpha1. Rules that
// need several fields at once or apimachinery's parsers (selector matches
// template, unique container names, requests within limits) are checked in Go
// after decoding, in check.go; defaults are filled in defaults.go.
//
// Usage:
//
//	s, err := schema.Default() // compiled once per process
//	if err != nil {
//		return err
//	}
//	cache := schema.NewCache(100_000) // keep across syncs
//	objs, err := s.Load(ctx, os.DirFS(checkout), nil, schema.WithCache(cache))
//	var problems schema.ErrorList
//	if errors.As(err, &problems) {
//		for _, p := range problems {
//			fmt.Println(p) // apps/web.yaml:14:7: Deployment default/web: spec.replicas: must be an integer, got "three"
//		}
//	}
//	for _, o := range objs {
//		_ = o.Object // *appsv1.Deployment, *corev1.Service, … with defaults filled in
//	}
package schema
