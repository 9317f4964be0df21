// Package logs keeps containers' output on the node in the CRI log format the
// kubelet uses, one line per line of output:
//
//	2026-11-25T21:00:00.123456789Z stdout F hello
//
// (F for a full line, P for the part of a line cut at 16 KiB), rotated by size.
// Containerd's shim hands a container's output to a logging binary (keelson
// itself, through DriverMain), so logging goes on while the agent restarts.
// Read serves the logs back with the kubelet's options.
package logs
