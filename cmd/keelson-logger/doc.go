// Command keelson-logger is the logging binary containerd's shim runs for
// each container of a keelson node: it copies the container's stdout and
// stderr into its log file in the CRI format, rotated by size, for as long
// as the container runs, whether or not the agent does.
//
// It is a program of its own, beside the keelson binary, because one runs
// per container for the container's whole life: keelson itself starts in
// some 80 ms and holds some 9 MiB of its own memory after its packages'
// initialisation, this one in under a millisecond and under 1 MiB, which
// at 110 containers is 1 GiB of the node's memory and 9 s of CPU at start.
// Without it the agent uses keelson itself, which does the same job.
//
// It imports nothing of keelson but agent/logs: keep it so.
package main
