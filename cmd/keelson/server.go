package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/store"
)

// serverOptions are the flags of `keelson server` (and, later, `keelson up`).
type serverOptions struct {
	dataDir          string
	listen           string
	etcdEndpoints    []string
	etcdCert         string
	etcdKey          string
	etcdCA           string
	etcdListenClient string
	etcdListenPeer   string
}

func (o *serverOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir(), "where keelson keeps its state (the embedded etcd's data among it)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:7443", "API listen address")
	f.StringSliceVar(&o.etcdEndpoints, "etcd-endpoints", nil, "external etcd cluster endpoints (comma-separated); empty runs an embedded etcd")
	f.StringVar(&o.etcdCert, "etcd-cert", "", "client certificate for the external etcd")
	f.StringVar(&o.etcdKey, "etcd-key", "", "client key for the external etcd")
	f.StringVar(&o.etcdCA, "etcd-ca", "", "CA bundle that signed the external etcd's certificates")
	f.StringVar(&o.etcdListenClient, "etcd-listen-client", "http://127.0.0.1:2379", "embedded etcd: client URL")
	f.StringVar(&o.etcdListenPeer, "etcd-listen-peer", "http://127.0.0.1:2380", "embedded etcd: peer URL")
}

func newServerCmd(g *globalFlags) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: etcd (embedded or external) and the API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runServer(cmd.Context(), o, log)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// runServer runs the control plane until ctx ends, then stops it cleanly: the
// API first, then etcd, so nothing is written after the data is flushed.
func runServer(ctx context.Context, o *serverOptions, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(store.Collectors()...)

	var st *store.Store
	srv := apiserver.New(apiserver.Config{
		Addr:     o.listen,
		Gatherer: reg,
		Logger:   log,
		ReadyChecks: map[string]apiserver.Check{
			"etcd": func(ctx context.Context) error { return st.Ping(ctx) },
		},
	})
	// Take the port before starting etcd, so a taken port fails at once.
	l, err := srv.Listen()
	if err != nil {
		return err
	}
	defer l.Close()

	st, err = store.Open(ctx, store.Config{
		DataDir:   o.dataDir,
		Endpoints: o.etcdEndpoints,
		CertFile:  o.etcdCert, KeyFile: o.etcdKey, CAFile: o.etcdCA,
		Embedded: store.EmbeddedConfig{ClientURL: o.etcdListenClient, PeerURL: o.etcdListenPeer},
		Logger:   log,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("closing the store", "err", err)
		}
		log.Info("stopped")
	}()
	go waitForEtcd(ctx, st, log)
	err = srv.Serve(ctx, l)
	log.Info("shutting down")
	return err
}

// waitForEtcd logs, with growing pauses, until etcd first answers, so that an
// unreachable external cluster is visible in the log while /readyz says so.
func waitForEtcd(ctx context.Context, st *store.Store, log *slog.Logger) {
	delay := 500 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := st.Ping(pctx)
		cancel()
		if err == nil {
			log.Info("etcd is ready", "endpoints", strings.Join(st.Endpoints(), ","))
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			log.Debug("etcd ping", "err", err)
		}
		log.Warn("etcd not reachable, retrying", "endpoints", strings.Join(st.Endpoints(), ","), "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}
