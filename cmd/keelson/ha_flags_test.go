package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Bad HA and simulated-node flags are refused at start, saying which flag
// and why, before anything runs.
func TestHAFlagsRefused(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	o := &serverOptions{}
	cmd := &cobra.Command{}
	o.addFlags(cmd)
	if err := cmd.ParseFlags([]string{"--leader-lease-duration", "500ms", "--data-dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := runServer(t.Context(), o, log); err == nil || !strings.Contains(err.Error(), "--leader-lease-duration 500ms: want at least 1s") {
		t.Errorf("server with a 500ms lease: %v", err)
	}

	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("one-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		runtime string
		nodes   int
		servers []string
		want    string
	}{
		{"docker", 1, nil, `--runtime "docker": want containerd or simulated`},
		{"containerd", 3, nil, "--nodes 3: only simulated nodes"},
		{"simulated", 0, nil, "--nodes 0: want at least 1"},
		{"simulated", 2, nil, "holds 1 tokens, want one per simulated node (2)"},
		{"simulated", 1, []string{"api:7443"}, `API server URL "api:7443"`},
	} {
		a := &agentOptions{runtime: tc.runtime, nodes: tc.nodes, tokenFile: tokens, nodeName: "n", servers: tc.servers}
		if a.servers == nil {
			a.servers = []string{"https://127.0.0.1:1"}
		}
		if err := runAgent(t.Context(), a, log); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("agent --runtime %s --nodes %d --server %v: %v, want %q", tc.runtime, tc.nodes, a.servers, err, tc.want)
		}
	}
}
