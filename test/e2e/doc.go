// Package e2e holds end-to-end tests of keelson against real etcd, Git
// repositories and containerd.
package e2e
