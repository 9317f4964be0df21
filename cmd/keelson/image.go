package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/keelson/keelson/agent/runtime/containerd"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images on this node's containerd",
	}
	cmd.AddCommand(newImageImportCmd())
	return cmd
}

func newImageImportCmd() *cobra.Command {
	var socket, namespace string
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Load OCI or Docker image archives into this node's containerd",
		Long: `Load OCI or Docker image archives (as written by 'make images', 'docker save'
or 'ctr images export') into the containerd keelson's agent uses, so pods can
run them on machines that reach no registry.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return importArchives(cmd.Context(), cmd.OutOrStdout(), socket, namespace, args)
		},
	}
	cmd.Flags().StringVar(&socket, "containerd-socket", "/run/containerd/containerd.sock", "containerd's socket")
	cmd.Flags().StringVar(&namespace, "namespace", containerd.DefaultNamespace, "containerd namespace")
	return cmd
}

// importArchives loads image archives into the containerd at socket.
func importArchives(ctx context.Context, out io.Writer, socket, namespace string, paths []string) error {
	rt, err := containerd.New(ctx, socket, namespace)
	if err != nil {
		return err
	}
	defer rt.Close()
	if _, err := rt.Version(ctx); err != nil {
		return fmt.Errorf("containerd at %s does not answer (is it running? --containerd-socket): %w", socket, err)
	}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		imgs, err := rt.Import(ctx, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, img := range imgs {
			fmt.Fprintf(out, "imported %s (%s)\n", img.Ref, img.ID)
		}
	}
	return nil
}
