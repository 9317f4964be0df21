package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EmbeddedConfig tunes the embedded etcd. Zero values take the defaults.
type EmbeddedConfig struct {
	// ClientURL is where the embedded etcd serves clients; default
	// http://127.0.0.1:2379. Only loopback addresses are sensible without TLS.
	ClientURL string
	// PeerURL is the raft peer address of the single member; default
	// http://127.0.0.1:2380.
	PeerURL string
	// StartTimeout bounds the wait for etcd to become ready; default 60s.
	StartTimeout time.Duration
	// QuotaBackendBytes is the database size limit; default 8 GiB.
	QuotaBackendBytes int64
	// CompactionRetention keeps this much history for watches; default "1h".
	CompactionRetention string
}

// Embedded is an etcd server running inside this process.
type Embedded struct {
	etcd  *embed.Etcd
	lg    *zap.Logger
	level zap.AtomicLevel
}

// StartEmbedded starts a single-member etcd with its data under
// dataDir/etcd and waits until it serves. It returns one clear error when the
// data dir is not writable, a port is taken, or etcd does not come up in time.
func StartEmbedded(ctx context.Context, dataDir string, cfg EmbeddedConfig, log *slog.Logger) (*Embedded, error) {
	dir := filepath.Join(dataDir, "etcd")
	if err := checkWritable(dir); err != nil {
		return nil, err
	}
	ec := embed.NewConfig()
	ec.Name = "keelson"
	ec.Dir = dir
	ec.LogLevel = "error"
	ec.MaxTxnOps = 16384
	ec.MaxRequestBytes = maxMessageBytes
	ec.QuotaBackendBytes = 8 << 30
	if cfg.QuotaBackendBytes > 0 {
		ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	}
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = "1h"
	if cfg.CompactionRetention != "" {
		ec.AutoCompactionRetention = cfg.CompactionRetention
	}
	clientURL, err := parseURL("client", cfg.ClientURL, "http://127.0.0.1:2379")
	if err != nil {
		return nil, err
	}
	peerURL, err := parseURL("peer", cfg.PeerURL, "http://127.0.0.1:2380")
	if err != nil {
		return nil, err
	}
	ec.ListenClientUrls = []url.URL{clientURL}
	ec.AdvertiseClientUrls = []url.URL{clientURL}
	ec.ListenPeerUrls = []url.URL{peerURL}
	ec.AdvertisePeerUrls = []url.URL{peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	level := zap.NewAtomicLevelAt(zapcore.ErrorLevel)
	lg := zapAt(level)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)

	e, err := embed.StartEtcd(ec)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("embedded etcd: a port is taken (%s or %s): stop what holds it or choose other URLs: %w",
				clientURL.Host, peerURL.Host, err)
		}
		return nil, fmt.Errorf("embedded etcd in %s: %w", dir, err)
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s failed while starting: %w", dir, err)
	case <-timer.C:
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s was not ready after %s", dir, timeout)
	case <-ctx.Done():
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: %w", dir, ctx.Err())
	}
	log.Info("embedded etcd ready", "dir", dir, "client", clientURL.String())
	return &Embedded{etcd: e, lg: lg, level: level}, nil
}

func parseURL(what, s, def string) (url.URL, error) {
	if s == "" {
		s = def
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return url.URL{}, fmt.Errorf("%w: embedded etcd %s URL %q: want scheme://host:port", ErrInvalid, what, s)
	}
	return *u, nil
}

// checkWritable makes dir and proves a file can be written in it, so that a
// read-only data dir fails with one clear line instead of deep inside etcd.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s is not writable (%w): fix its permissions or choose another with --data-dir", filepath.Dir(dir), err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable (%w): fix its permissions or choose another with --data-dir", filepath.Dir(dir), err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// ClientURLs returns the URLs the embedded etcd serves clients on.
func (e *Embedded) ClientURLs() []string {
	var out []string
	for _, l := range e.etcd.Clients {
		out = append(out, "http://"+l.Addr().String())
	}
	return out
}

// Close stops the embedded etcd; its data is on disk when Close returns.
func (e *Embedded) Close() {
	// Closing listeners makes etcd log errors that are only the shutdown itself.
	e.level.SetLevel(zapcore.FatalLevel)
	e.etcd.Close()
	_ = e.lg.Sync()
}

func (e *Embedded) zapLogger() *zap.Logger { return e.lg }

// quietZap is the logger handed to etcd's own code: errors only, to stderr.
// keelson logs its own view of etcd through slog.
func quietZap() *zap.Logger { return zapAt(zap.NewAtomicLevelAt(zapcore.ErrorLevel)) }

func zapAt(level zap.AtomicLevel) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(os.Stderr), level)
	return zap.New(core)
}
