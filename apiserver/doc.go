// Package apiserver serves keelson's HTTP API: health, readiness, metrics and
// version now; the read-only Kubernetes-dialect status API (discovery, get,
// list, watch) and the node agents' restricted writes as they come.
package apiserver
