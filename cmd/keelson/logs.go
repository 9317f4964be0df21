package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

type logsOptions struct {
	clientFlags
	namespace  string
	container  string
	follow     bool
	previous   bool
	timestamps bool
	tail       int64
	since      time.Duration
}

func newLogsCmd() *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs POD",
		Short: "Print a container's logs, through the API (as kubectl logs)",
		Example: `  keelson logs web-7d9c5b8f6-x2x4q -n shop
  keelson logs web-7d9c5b8f6-x2x4q -c sidecar -f --tail 20`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			opts := &corev1.PodLogOptions{Container: o.container, Follow: o.follow, Previous: o.previous, Timestamps: o.timestamps}
			if o.tail >= 0 {
				opts.TailLines = &o.tail
			}
			if o.since > 0 {
				s := int64(o.since.Seconds())
				opts.SinceSeconds = &s
			}
			stream, err := client.CoreV1().Pods(o.namespace).GetLogs(args[0], opts).Stream(cmd.Context())
			if err != nil {
				return fmt.Errorf("logs of pod %s/%s: %w", o.namespace, args[0], err)
			}
			defer stream.Close()
			_, err = io.Copy(cmd.OutOrStdout(), stream)
			if cmd.Context().Err() != nil {
				return nil // interrupted while following
			}
			return err
		},
	}
	o.clientFlags.add(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace")
	f.StringVarP(&o.container, "container", "c", "", "container (default: the pod's only one)")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new lines")
	f.BoolVarP(&o.previous, "previous", "p", false, "the previous run of a restarted container")
	f.BoolVar(&o.timestamps, "timestamps", false, "prefix each line with its time")
	f.Int64Var(&o.tail, "tail", -1, "only the last lines (-1: all)")
	f.DurationVar(&o.since, "since", 0, "only lines newer than this (5s, 2m, 3h)")
	return cmd
}
