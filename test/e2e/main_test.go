package e2e

import (
	"os"
	"testing"

	"github.com/keelson/keelson/agent/logs"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestMain(m *testing.M) {
	// This test binary is also the containers' logging binary, as keelson is.
	if logs.IsDriver(os.Args[1:]) {
		os.Exit(logs.DriverMain(os.Args[1:]))
	}
	// Nothing a test starts (containerd, shims, mounts) may outlive it.
	os.Exit(containerdtest.Clean(etcdtest.Wrap(m)).Run())
}
