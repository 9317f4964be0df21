// Command keelson is the one binary of keelson: control plane, node agent and
// the tools people run. See `keelson --help`.
package main
