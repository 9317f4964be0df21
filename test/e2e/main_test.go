package e2e

import (
	"testing"

	"github.com/keelson/keelson/store/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }
