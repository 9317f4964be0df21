// Package containerd implements the agent's runtime with containerd and runc,
// through the containerd v2 Go client. It works with containerd 1.6 and later
// daemons (Debian 12 ships 1.6).
package containerd
