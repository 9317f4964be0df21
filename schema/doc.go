// Package schema holds the CUE definitions of every kind keelson accepts, fills
// in Kubernetes' defaults, and validates manifests with errors that name
// file:line:column and the field. It imports nothing else of keelson and never
// touches etcd, Git or the network.
package schema
