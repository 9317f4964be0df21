package agent

import (
	"os"
	"testing"

	"github.com/keelson/keelson/agent/runtime/containerdtest"
)

// TestMain fails the package if its tests leave a containerd, a shim or a
// mount behind.
func TestMain(m *testing.M) { os.Exit(containerdtest.Clean(m).Run()) }
