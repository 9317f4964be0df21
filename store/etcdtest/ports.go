package etcdtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// Ports for servers a test starts by address come from a range below the
// kernel's ephemeral ports (32768–60999 on Linux) and the NodePort range
// (30000–32767): a port taken from :0 and released is the kind the kernel
// next gives to an outgoing connection, which then holds it when the server
// binds. go test runs packages in parallel processes, so each port handed out
// is also reserved by a lock file that its process holds until it exits.
const (
	portLow  = 20000
	portHigh = 29999
)

var ports struct {
	mu   sync.Mutex
	next int
	held []*os.File // the locks; never closed, as the ports may still be bound
}

// FreePort returns a port that is free on every address for TCP and UDP and
// that no other test process has been given.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := reservePort()
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return p
}

func reservePort() (int, error) {
	ports.mu.Lock()
	defer ports.mu.Unlock()
	dir := filepath.Join(os.TempDir(), "keelson-test-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	n := portHigh - portLow + 1
	if ports.next == 0 {
		ports.next = rand.IntN(n)
	}
	for range n {
		port := portLow + ports.next%n
		ports.next++
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return 0, err
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // another test process has it
			continue
		}
		if !bindable(port) {
			f.Close()
			continue
		}
		ports.held = append(ports.held, f)
		return port, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d", portLow, portHigh)
}

// bindable reports whether port can be bound on every address, for TCP and
// UDP (cluster DNS serves both).
func bindable(port int) bool {
	addr := ":" + strconv.Itoa(port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
