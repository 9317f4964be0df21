package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// globalFlags are the flags every command takes.
type globalFlags struct {
	logFormat string
	logLevel  string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "keelson",
		Short: "keelson is a GitOps container orchestrator: Git is the only write path",
		Long: `keelson runs containers from Kubernetes manifests kept in Git. A sync loop
pulls the manifests, validates them, and stores them in etcd; controllers and node
agents make the machines match. People change the cluster by committing, and watch
it through a read-only API that kubectl understands.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(
		newServerCmd(g),
		newUpCmd(g),
		newVersionCmd(),
		newImageCmd(),
		newAgentCmd(g),
		newLogsCmd(),
		newTopCmd(),
		newValidateCmd(),
		newPlanCmd(),
		newKubeconfigCmd(),
		newGetCmd(),
		newDescribeCmd(),
		newSyncCmd(),
		newStatusCmd(),
		newSecretCmd(),
	)
	return root
}

// logger builds the process logger from the global flags.
func (g *globalFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
}

// defaultDataDir is /var/lib/keelson for root, else $XDG_DATA_HOME/keelson
// (~/.local/share/keelson when XDG_DATA_HOME is unset).
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/keelson"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "keelson")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "keelson-data"
	}
	return filepath.Join(home, ".local", "share", "keelson")
}
