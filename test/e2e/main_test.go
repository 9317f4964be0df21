package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/store/etcdtest"
)

// logger is keelson-logger, built for the run: the nodes' containers log
// through it as an installed node's do.
var logger string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keelson-logger-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if logger, err = containerdtest.BuildLogger(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Nothing a test starts (containerd, shims, mounts) may outlive it.
	code := containerdtest.Clean(etcdtest.Wrap(m)).Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
