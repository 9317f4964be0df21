package e2e

import (
	"os"
	"testing"

	"github.com/keelson/keelson/agent/logs"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestMain(m *testing.M) {
	// This test binary is also the containers' logging binary, as keelson is.
	if logs.IsDriver(os.Args[1:]) {
		os.Exit(logs.DriverMain(os.Args[1:]))
	}
	etcdtest.Main(m)
}
