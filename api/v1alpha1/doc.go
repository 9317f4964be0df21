// +k8s:deepcopy-gen=package
// +groupName=keelson.dev

// Package v1alpha1 holds keelson's own API types, group keelson.dev, version
// v1alpha1, beside the Kubernetes kinds keelson stores:
//
//   - Sync: the status of one Git source, written by gitsync after every
//     attempt (revisions, conditions, inventory, history) and by the
//     reconciler (the health of what the source declared). One per source,
//     cluster-scoped, named after the source. Read it with
//     `kubectl get syncs.keelson.dev` or `keelson status`.
//   - NodePolicy: labels, taints and cordoning for nodes, declared in Git
//     (nobody writes to the API) and applied by the reconciler to the nodes
//     it matches by name or labels.
//   - HelmChart: a Helm chart of the same repository (a folder or an
//     archive) and its values, declared in Git and rendered by gitsync
//     (package gitsync/render) into the objects synced beside it.
//     Namespaced.
//
// The types follow Kubernetes API conventions (metav1.Condition, TypeMeta,
// ObjectMeta, JSON field names) so client-go and kubectl read them as they
// read any custom resource. AddToScheme registers them; package store does
// so into client-go's scheme, so every keelson process knows them.
package v1alpha1
