package netnstest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/goleak"

	"github.com/keelson/keelson/agent/network"
)

// marker starts the name of every namespace file this process makes, so
// that leftovers finds only its own.
var marker = fmt.Sprintf("knetns-%d-", os.Getpid())

// NS is a network namespace made for a test.
type NS struct {
	// Name is the name given to New.
	Name string
	// Path is the bind mount that holds the namespace: what a Config.NetNS
	// takes.
	Path string
	// NL is a netlink handle inside the namespace.
	NL *netlink.Handle
	fd *os.File
}

// New makes a network namespace with its loopback up; t.Cleanup removes it.
func New(t testing.TB, name string) *NS {
	t.Helper()
	path := filepath.Join(t.TempDir(), marker+name)
	if err := network.NewNetNS(path); err != nil {
		t.Fatalf("netns %s: %v", name, err)
	}
	ns := &NS{Name: name, Path: path}
	t.Cleanup(func() {
		if ns.NL != nil {
			ns.NL.Close()
		}
		if ns.fd != nil {
			ns.fd.Close()
		}
		if err := network.RemoveNetNS(path); err != nil {
			t.Errorf("netns %s: %v", name, err)
		}
	})
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	ns.fd = f
	if ns.NL, err = netlink.NewHandleAt(netns.NsHandle(f.Fd())); err != nil {
		t.Fatalf("netlink in netns %s: %v", name, err)
	}
	lo, err := ns.NL.LinkByName("lo")
	if err == nil {
		err = ns.NL.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("netns %s: loopback up: %v", name, err)
	}
	return ns
}

// Handle is the namespace's file descriptor, for netlink and nftables
// options that take one.
func (ns *NS) Handle() netns.NsHandle { return netns.NsHandle(ns.fd.Fd()) }

// Do runs fn on an OS thread inside the namespace: sockets fn opens belong
// to the namespace for their whole life, whichever thread uses them later.
func (ns *NS) Do(fn func() error) error { return network.InNetNS(ns.Path, fn) }

// Sysctl writes a /proc/sys/net value (key like "ipv4/ip_forward") of the
// namespace.
func (ns *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	err := ns.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys/net", key), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("netns %s: sysctl net/%s=%s: %v", ns.Name, key, value, err)
	}
}

// leftovers lists the namespace mounts of this process still in place,
// which CheckMain reports.
func leftovers() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var left []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.Contains(fields[4], marker) {
			left = append(left, fields[4])
		}
	}
	return left, sc.Err()
}

// CheckMain runs the tests, then fails the run if a namespace mount or a
// goroutine is left: func TestMain(m *testing.M) { os.Exit(netnstest.CheckMain(m)) }.
func CheckMain(m *testing.M) int {
	code := m.Run()
	left, err := leftovers()
	if err == nil && len(left) > 0 {
		err = errors.New("network namespaces left mounted: " + strings.Join(left, ", "))
	}
	if code == 0 {
		err = errors.Join(err, goleak.Find())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netnstest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
