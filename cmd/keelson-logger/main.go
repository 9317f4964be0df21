package main

import (
	"fmt"
	"os"

	"github.com/keelson/keelson/agent/logs"
)

func main() {
	if !logs.IsDriver(os.Args[1:]) {
		fmt.Fprintln(os.Stderr, "keelson-logger is the logging binary containerd's shim runs for keelson's containers; it is not run by hand")
		os.Exit(2)
	}
	os.Exit(logs.DriverMain(os.Args[1:]))
}
