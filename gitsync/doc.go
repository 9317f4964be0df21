// Package gitsync turns commits into desired state: it fetches sources (remote
// Git, local Git, plain directories), loads and validates the manifests, diffs
// them against the store, applies a revision atomically, prunes what left Git,
// reports Sync status, and computes `keelson plan`.
package gitsync
