package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/gitsync/chartrepo"
	"github.com/keelson/keelson/gitsync/notification"
	"github.com/keelson/keelson/gitsync/sops"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// syncSources are the sources to sync: those of the --config file, or
// --repo's, or none.
func (o *serverOptions) syncSources() ([]gitsync.Config, error) {
	if o.configFile == "" {
		if o.sync.Repo == "" {
			return nil, nil
		}
		switch o.onFailure {
		case "", "none":
		case gitsync.OnFailureRollback:
			o.sync.Rollback = true
		default:
			return nil, fmt.Errorf("--on-failure %q: want rollback or none", o.onFailure)
		}
		return []gitsync.Config{o.sync}, nil
	}
	if o.sync.Repo != "" {
		return nil, fmt.Errorf("--config and --repo both given: list the repository among the sources of %s, or drop --config", o.configFile)
	}
	c, err := gitsync.LoadServerConfig(o.configFile)
	if err != nil {
		return nil, err
	}
	o.notifications = c.Notifications
	return c.Sources, nil
}

// newSyncs builds the syncs of the sources into the store.
func newSyncs(o *serverOptions, sources []gitsync.Config, st *store.Store, log *slog.Logger) (*gitsync.Syncs, error) {
	var sch *schema.Schema
	if len(sources) > 0 {
		var err error
		if sch, err = schema.Default(); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
	}
	if err := o.makeCharts(log); err != nil {
		return nil, err
	}
	if err := o.loadDecryptionKeys(log); err != nil {
		return nil, err
	}
	o.prepareSources(sources)
	syncs, err := gitsync.NewSyncs(sources, st, sch, schema.NewCache(100_000), log)
	if err != nil {
		return nil, err
	}
	syncs.OnStatus = o.onSyncStatus
	if len(o.notifications.Providers) > 0 {
		if o.notify, err = notification.New(o.notifications.Providers, notification.Options{Log: log.With("component", "notification")}); err != nil {
			return nil, err
		}
		syncs.Notify, syncs.Notifications = o.notify.Notify, o.notifications
	}
	return syncs, nil
}

// loadDecryptionKeys reads --decryption-key-file once; the keys are never
// logged, their public recipients are.
func (o *serverOptions) loadDecryptionKeys(log *slog.Logger) error {
	if len(o.decryptionKeyFiles) == 0 || o.decryption != nil {
		return nil
	}
	keys, err := sops.LoadKeyFiles(o.decryptionKeyFiles...)
	if err != nil {
		return fmt.Errorf("--decryption-key-file: %w", err)
	}
	o.decryption = keys
	log.Info("decrypting manifests encrypted with sops", "recipients", strings.Join(keys.Recipients(), ","))
	return nil
}

// makeCharts makes the fetcher of --chart-repository, kept under
// <data-dir>/charts; none when the flag is not given.
func (o *serverOptions) makeCharts(log *slog.Logger) error {
	if len(o.chartRepositories) == 0 || o.charts != nil {
		return nil
	}
	charts, err := chartrepo.New(chartrepo.Options{
		Dir: filepath.Join(o.dataDir, "charts"), Repositories: o.chartRepositories,
		IndexInterval: o.sync.Interval, Log: log,
	})
	if err != nil {
		return fmt.Errorf("--chart-repository: %w", err)
	}
	o.charts = charts
	return nil
}

// prepareSources sets what the server decides for every source: the
// transaction limits of its etcd, where remote clones are kept, and the
// service ranges revisions are checked against, and the chart repositories
// HelmCharts may fetch from.
func (o *serverOptions) prepareSources(sources []gitsync.Config) {
	for i := range sources {
		cfg := &sources[i]
		if len(o.etcdEndpoints) == 0 {
			// The embedded etcd takes large transactions: a revision lands in one.
			cfg.MaxTxnOps, cfg.MaxTxnBytes = 16384, 32<<20
		}
		if cfg.CacheDir == "" {
			cfg.CacheDir = filepath.Join(o.dataDir, "git")
		}
		cfg.ServiceCIDR, cfg.NodePorts = o.serviceCIDR, o.nodePortRange
		if o.charts != nil {
			cfg.Charts = o.charts
		}
		cfg.Decryption = o.decryption
		cfg.Logs = o.logs
	}
}

// reloadOnHangup re-reads the --config file at every SIGHUP and applies it
// to syncs (see gitsync.Syncs.Reload), until ctx ends or the returned stop is
// called. A file with errors is logged and changes nothing.
func reloadOnHangup(ctx context.Context, o *serverOptions, syncs *gitsync.Syncs, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-hup:
			}
			sources, err := gitsync.LoadConfigFile(o.configFile)
			if err == nil {
				o.prepareSources(sources)
				err = syncs.Reload(sources)
			}
			if err != nil {
				log.Error("config not reloaded: the syncs run as before", "config", o.configFile, "err", err)
				continue
			}
			log.Info("config reloaded", "config", o.configFile, "syncs", strings.Join(syncs.Names(), ","))
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}
