package network_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keelson/keelson/agent/network"
	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/runtimetest"
)

// testNetwork is a pod network on a bridge and subnet of the test's own, so it
// never meets a real keelson0.
func testNetwork(t *testing.T, cidr string) *network.Network {
	t.Helper()
	return testNetworkIn(t, cidr, t.TempDir())
}

// testNetworkIn is testNetwork keeping its CNI cache and IP allocations
// in dataDir.
func testNetworkIn(t *testing.T, cidr, dataDir string) *network.Network {
	t.Helper()
	if _, err := os.Stat(filepath.Join(network.DefaultPluginDir, "bridge")); err != nil {
		if os.Getenv("KEELSON_REQUIRE_CONTAINERD") == "1" {
			t.Fatalf("CNI plugins missing (apt-get install containernetworking-plugins): %v", err)
		}
		t.Skipf("CNI plugins missing (apt-get install containernetworking-plugins): %v", err)
	}
	bridge := fmt.Sprintf("kt%d", os.Getpid()%100000)
	n, err := network.New(network.Config{PodCIDR: cidr, Bridge: bridge, DataDir: dataDir, NoMasquerade: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	return n
}

type pod struct {
	id, netns string
	ip        net.IP
}

func newPod(t *testing.T, n *network.Network, id string, ports ...network.PortMapping) pod {
	t.Helper()
	p := pod{id: id, netns: filepath.Join(t.TempDir(), "netns-"+id)}
	if err := network.NewNetNS(p.netns); err != nil {
		t.Fatal(err)
	}
	ip, err := n.Setup(t.Context(), id, p.netns, ports)
	if err != nil {
		t.Fatal(err)
	}
	p.ip = ip
	t.Cleanup(func() {
		if err := n.Teardown(context.Background(), id, p.netns, ports); err != nil {
			t.Errorf("teardown: %v", err)
		}
		if err := network.RemoveNetNS(p.netns); err != nil {
			t.Errorf("remove netns: %v", err)
		}
	})
	return p
}

// run starts a container of pod p and returns its id.
func run(t *testing.T, rt runtime.Runtime, p pod, name string, cmd ...string) string {
	t.Helper()
	spec := runtimetest.Spec(name, cmd...)
	spec.PodUID, spec.PodName, spec.NetNSPath = p.id, p.id, p.netns
	return runtimetest.Started(t, rt, spec)
}

func TestPodNetworking(t *testing.T) {
	rt, _ := containerdtest.NewRuntime(t)
	n := testNetwork(t, "10.99.7.0/24")
	a, b := newPod(t, n, "pod-a"), newPod(t, n, "pod-b")
	if a.ip.Equal(b.ip) || !(&net.IPNet{IP: net.IPv4(10, 99, 7, 0), Mask: net.CIDRMask(24, 32)}).Contains(a.ip) {
		t.Fatalf("pod IPs %s and %s: want two addresses of 10.99.7.0/24", a.ip, b.ip)
	}
	run(t, rt, a, "web", "httpd", "-f", "-p", "8080", "-h", "/etc")

	// A sidecar in the same pod reaches the main container on localhost.
	side := run(t, rt, a, "sidecar", "sh", "-c",
		"for i in $(seq 50); do wget -q -O /dev/null http://127.0.0.1:8080/passwd && exit 0; sleep 0.1; done; exit 1")
	if c := runtimetest.WaitState(t, rt, side, runtime.StateExited); c.ExitCode != 0 {
		t.Fatalf("sidecar could not reach the main container on localhost (exit %d)", c.ExitCode)
	}
	// Another pod reaches it by pod IP, across the bridge.
	client := run(t, rt, b, "client", "sh", "-c",
		fmt.Sprintf("for i in $(seq 50); do wget -q -O /dev/null http://%s:8080/passwd && exit 0; sleep 0.1; done; exit 1", a.ip))
	if c := runtimetest.WaitState(t, rt, client, runtime.StateExited); c.ExitCode != 0 {
		t.Fatalf("pod-b could not reach pod-a at %s:8080 (exit %d)", a.ip, c.ExitCode)
	}
	// And not on localhost: pods do not share a network.
	lonely := run(t, rt, b, "lonely", "sh", "-c", "wget -q -T 2 -O /dev/null http://127.0.0.1:8080/passwd")
	if c := runtimetest.WaitState(t, rt, lonely, runtime.StateExited); c.ExitCode == 0 {
		t.Fatal("pod-b reached pod-a's server on its own localhost")
	}
}

func TestNewBadConfig(t *testing.T) {
	if _, err := network.New(network.Config{PodCIDR: "10.42.0.0", DataDir: t.TempDir()}); err == nil {
		t.Fatal("a pod CIDR without a prefix length was accepted")
	}
	if _, err := network.New(network.Config{PodCIDR: "10.42.0.0/24"}); err == nil {
		t.Fatal("no data dir was accepted")
	}
}

// TestHostPort: a pod's hostPort is mapped on the node (portmap): another pod
// reaches it through the node's address on the pod network, the bridge's.
func TestHostPort(t *testing.T) {
	rt, _ := containerdtest.NewRuntime(t)
	n := testNetwork(t, "10.99.17.0/24")
	server := newPod(t, n, "hp-server", network.PortMapping{HostPort: 18080, ContainerPort: 8080, Protocol: "tcp"})
	client := newPod(t, n, "hp-client")
	run(t, rt, server, "web", "httpd", "-f", "-p", "8080", "-h", "/etc")
	c := run(t, rt, client, "client", "sh", "-c",
		"for i in $(seq 50); do wget -q -O /dev/null http://10.99.17.1:18080/passwd && exit 0; sleep 0.1; done; exit 1")
	if st := runtimetest.WaitState(t, rt, c, runtime.StateExited); st.ExitCode != 0 {
		t.Fatalf("hostPort 18080 on the node did not reach the pod's port 8080 (exit %d)", st.ExitCode)
	}
}

// TestTeardownLeavesNothing: a pod's teardown removes all that its setup
// wrote under the data dir — CNI's cached results (of the pod with
// hostPorts and of the one without, whose lists differ) and its address —
// and its loopback was up without a plugin. What the loopback plugin of
// earlier agents left is removed.
func TestTeardownLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// What an earlier agent's loopback plugin left: removed by New.
	results := filepath.Join(dir, "cache", "results")
	if err := os.MkdirAll(results, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(results, "keelson-lo-gone-lo"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := testNetworkIn(t, "10.99.27.0/24", dir)
	files := func() []string {
		var out []string
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasSuffix(path, "/lock") && !strings.HasPrefix(d.Name(), "last_reserved_ip") {
				out = append(out, strings.TrimPrefix(path, dir+"/"))
			}
			return nil
		})
		return out
	}
	for _, tc := range []struct {
		id    string
		ports []network.PortMapping
	}{
		{"td-plain", nil},
		{"td-ports", []network.PortMapping{{HostPort: 18081, ContainerPort: 8080, Protocol: "tcp"}}},
	} {
		netns := filepath.Join(t.TempDir(), "netns")
		if err := network.NewNetNS(netns); err != nil {
			t.Fatal(err)
		}
		ip, err := n.Setup(t.Context(), tc.id, netns, tc.ports)
		if err != nil {
			t.Fatal(err)
		}
		var up bool
		if err := network.InNetNS(netns, func() error {
			lo, err := net.InterfaceByName("lo")
			up = err == nil && lo.Flags&net.FlagUp != 0
			return err
		}); err != nil || !up {
			t.Errorf("%s: loopback not up (%v)", tc.id, err)
		}
		var mine []string
		for _, f := range files() {
			if strings.Contains(f, tc.id) || strings.HasSuffix(f, ip.String()) {
				mine = append(mine, f)
			}
		}
		if len(mine) != 2 {
			t.Errorf("%s: setup wrote %v, want its cached result and its address", tc.id, mine)
		}
		if err := n.Teardown(context.Background(), tc.id, netns, tc.ports); err != nil {
			t.Fatal(err)
		}
		if err := network.RemoveNetNS(netns); err != nil {
			t.Fatal(err)
		}
		if left := files(); len(left) > 0 {
			t.Errorf("%s: left under the data dir after teardown: %v", tc.id, left)
		}
	}
}
