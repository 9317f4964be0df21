package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/hollow"
)

// Runtimes an agent may run pods with.
const (
	runtimeContainerd = "containerd"
	runtimeSimulated  = "simulated"
)

// runHollow runs --nodes simulated nodes in this process (package
// agent/hollow): each registers, renews its lease and reports its pods
// Running, with no container anywhere, to load a control plane as
// thousands of machines would.
func runHollow(ctx context.Context, o *agentOptions, log *slog.Logger) error {
	if o.nodes < 1 {
		return fmt.Errorf("--nodes %d: want at least 1", o.nodes)
	}
	b, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return fmt.Errorf("node tokens: %w", err)
	}
	tokens := strings.Fields(string(b))
	if len(tokens) != o.nodes {
		return fmt.Errorf("--token-file %s holds %d tokens, want one per simulated node (%d), one per line, in the order of the nodes %s", o.tokenFile, len(tokens), o.nodes, hollowName(o.nodeName, 0, o.nodes)+"…")
	}
	nodes := make([]hollow.Node, o.nodes)
	for i, tok := range tokens {
		client, err := agent.NewClient(o.servers, tok, o.caFile, log)
		if err != nil {
			return err
		}
		nodes[i] = hollow.Node{Name: hollowName(o.nodeName, i, o.nodes), Client: client}
	}
	log.Info("simulated nodes starting", "nodes", o.nodes, "first", nodes[0].Name, "servers", strings.Join(o.servers, ","))
	done, err := hollow.Run(ctx, hollow.Options{Nodes: nodes, Log: log})
	if err != nil {
		return err
	}
	log.Info("simulated nodes registered and running", "nodes", o.nodes)
	<-done
	return nil
}

// hollowName is the name of simulated node i of n: the node name itself
// for one node, else name-i.
func hollowName(name string, i, n int) string {
	if n == 1 {
		return name
	}
	return fmt.Sprintf("%s-%d", name, i)
}
