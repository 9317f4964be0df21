package vmtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestConsoleResult(t *testing.T) {
	const m = "vmtest-abc"
	for _, tc := range []struct {
		name    string
		console string
		out     string
		code    int
		ok      bool
	}{
		{"exit 0", "boot noise\r\nvmtest-abc start\r\nhello\r\nvmtest-abc exit 0\r\n", "hello\n", 0, true},
		{"no newline before the exit line", "vmtest-abc start\r\nhellovmtest-abc exit 3\r\n", "hello", 3, true},
		{"no exit line", "vmtest-abc start\r\nhello\r\n[ 3.1] Kernel panic\r\n", "", 0, false},
		{"exit line cut short", "vmtest-abc start\r\nvmtest-abc exit ", "", 0, false},
		{"never started", "vmtest-abc exit 0\r\n", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsole(m)
			c.Write([]byte(tc.console))
			out, code, ok := c.result()
			if out != tc.out || code != tc.code || ok != tc.ok {
				t.Errorf("result() = %q, %d, %v; want %q, %d, %v", out, code, ok, tc.out, tc.code, tc.ok)
			}
		})
	}
}

func TestModuleOrder(t *testing.T) {
	dir := t.TempDir()
	dep := "kernel/fs/overlayfs/overlay.ko:\n" +
		"kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko\n" +
		"kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko\n" +
		"kernel/net/802/stp.ko: kernel/net/llc/llc.ko\n" +
		"kernel/net/llc/llc.ko:\n" +
		"kernel/drivers/net/nlmon.ko.xz:\n"
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/fs/ext4/ext4.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := readDepmod(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		names []string
		want  []string
	}{
		{"no deps", []string{"overlay"}, []string{"kernel/fs/overlayfs/overlay.ko"}},
		{"deps first, each once", []string{"br-netfilter", "bridge"}, []string{"kernel/net/llc/llc.ko",
			"kernel/net/802/stp.ko", "kernel/net/bridge/bridge.ko", "kernel/net/bridge/br_netfilter.ko"}},
		{"built in", []string{"ext4"}, nil},
		{"compressed", []string{"nlmon"}, []string{"kernel/drivers/net/nlmon.ko.xz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.order(tc.names)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("order(%q) = %q, %v; want %q", tc.names, got, err, tc.want)
			}
		})
	}
	if _, err := d.order([]string{"nosuch"}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("order of an unknown module: %v, want an error naming it", err)
	}
}

func TestScriptRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"cgroup 3", Config{Cgroup: 3}},
		{"env without =", Config{Cgroup: 2, Env: []string{"FOO"}}},
		{"env name with a space", Config{Cgroup: 2, Env: []string{"A B=1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := script(tc.cfg, "m"); err == nil {
				t.Errorf("script accepted %+v", tc.cfg)
			}
		})
	}
}
