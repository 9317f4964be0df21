package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/keelson/keelson/agent/proxy"
	"github.com/keelson/keelson/internal/servicenet"
)

// The tests' processes share this machine's network with other tests and
// perhaps a running demo: each test package gets a service CIDR, an nftables
// table and cluster DNS port of its own, and removes its table afterwards.
var (
	testServiceCIDR = fmt.Sprintf("10.%d.0.0/16", 200+os.Getpid()%50)
	testTable       = fmt.Sprintf("kt%d", os.Getpid()%100000)
)

// isolate adds to the arguments of a keelson server, agent or up the flags
// that keep it apart, unless the test set them itself.
func isolate(t testing.TB, args []string) []string {
	if len(args) == 0 {
		return args
	}
	has := func(flag string) bool {
		return slices.ContainsFunc(args, func(a string) bool { return a == flag || strings.HasPrefix(a, flag+"=") })
	}
	cmd := args[0]
	out := slices.Clone(args)
	if (cmd == "server" || cmd == "up") && !has("--cluster-dns-addr") {
		// On every address: pods reach it at the advertise address.
		out = append(out, "--cluster-dns-addr", ":"+strings.Split(freeAddr(t), ":")[1])
	}
	if (cmd == "server" || cmd == "up") && !has("--service-cidr") {
		out = append(out, "--service-cidr", testServiceCIDR)
	}
	if cmd == "agent" && !has("--cluster-dns") {
		cidr, _ := servicenet.ParseCIDR(testServiceCIDR)
		out = append(out, "--cluster-dns", cidr.DNSIP().String())
	}
	if (cmd == "agent" || cmd == "up") && !has("--nftables-table") {
		out = append(out, "--nftables-table", testTable)
		t.Cleanup(func() {
			if err := proxy.Cleanup("", testTable); err != nil {
				t.Errorf("remove the test's nftables table: %v", err)
			}
		})
	}
	return out
}
