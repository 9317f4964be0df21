package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keelson/keelson/agent/logs"
)

func main() {
	// containerd's shim runs keelson as each container's logging binary.
	if logs.IsDriver(os.Args[1:]) {
		os.Exit(logs.DriverMain(os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string) int {
	cmd := newRootCmd()
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "keelson: %v\n", err)
		if code, ok := err.(exitCoder); ok {
			return code.ExitCode()
		}
		return 1
	}
	return 0
}

// exitCoder is an error that chooses the process exit code, for commands whose
// codes carry meaning (validate, plan).
type exitCoder interface {
	error
	ExitCode() int
}
