// Package sim is a simulated runtime.Runtime: containers are records, not
// processes, so thousands start at once. It is for scale and controller tests,
// never instead of containerd in the agent's own tests. It passes the same
// runtimetest suite as the containerd runtime.
//
// Processes follow a small, documented model of their command line:
//   - sh -c "exit N" exits with N as soon as it starts; true exits 0, false 1;
//   - sleep N exits 0 after N seconds;
//   - anything else runs until stopped, and then exits 137 (killed), as a
//     container's init process that does not handle SIGTERM does;
//   - a command whose base name is not in Config.Commands fails to start.
package sim
