package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Sentinel errors. Every method documents which of these it returns, always
// wrapped with context; compare with errors.Is.
var (
	// ErrNotFound means no object exists under the key.
	ErrNotFound = errors.New("store: not found")
	// ErrExists means Create found an object under the key already.
	ErrExists = errors.New("store: already exists")
	// ErrConflict means a compare-and-swap failed: the object changed since the
	// caller read it (its resourceVersion or uid no longer matches).
	ErrConflict = errors.New("store: conflict")
	// ErrTooOld means a watch or list asked for a resourceVersion etcd has
	// already compacted away; the caller must list again.
	ErrTooOld = errors.New("store: resource version too old")
	// ErrCorrupt means a value under the key prefix is not a decodable object.
	ErrCorrupt = errors.New("store: corrupt object")
	// ErrInvalid means the call's arguments are wrong (no name, a namespace on a
	// cluster-scoped kind, a malformed resourceVersion or continue token).
	ErrInvalid = errors.New("store: invalid request")
	// ErrUnknownKind means the object's kind is not one the store keeps.
	ErrUnknownKind = errors.New("store: unknown kind")
)

// Object is a typed Kubernetes object: a k8s.io/api struct pointer such as
// *corev1.Pod.
type Object interface {
	metav1.Object
	runtime.Object
}

// DefaultPrefix is the key prefix of every object keelson keeps in etcd.
const DefaultPrefix = "/keelson/registry"

// Config says where the store's etcd is. With Endpoints empty, Open starts an
// embedded etcd under DataDir; otherwise it connects to the external cluster.
type Config struct {
	// DataDir holds the embedded etcd's data ("<DataDir>/etcd"). Required when
	// Endpoints is empty.
	DataDir string
	// Embedded tunes the embedded etcd; zero values take defaults.
	Embedded EmbeddedConfig
	// Endpoints of an external etcd cluster, e.g. "https://10.0.0.1:2379".
	Endpoints []string
	// CertFile, KeyFile and CAFile are the client TLS files for an external
	// cluster; all optional.
	CertFile, KeyFile, CAFile string
	// Prefix of every key; DefaultPrefix when empty.
	Prefix string
	// DialTimeout bounds each connection attempt; 5s when zero.
	DialTimeout time.Duration
	// Logger receives the store's own log lines; slog.Default when nil.
	Logger *slog.Logger
}

// Store is keelson's typed view of etcd: the only code that talks to it.
// A Store is safe for concurrent use.
type Store struct {
	client  *clientv3.Client
	prefix  string
	embed   *Embedded
	log     *slog.Logger
	metrics *metrics
	cache   *decodeCache
	vals    *values
	admit   Admitter
}

// maxMessageBytes bounds a single request or response; sync transactions of
// whole repositories and lists of many objects must fit.
const maxMessageBytes = 64 << 20

// Open connects the store: to an embedded etcd it starts (Endpoints empty) or to
// an external cluster. An external cluster that does not answer yet is not an
// error: the client keeps retrying and Ping reports readiness.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "store")
	if len(cfg.Endpoints) > 0 {
		cli, err := newClient(cfg)
		if err != nil {
			return nil, err
		}
		return New(cli, cfg.Prefix, log), nil
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: a data dir is needed for the embedded etcd", ErrInvalid)
	}
	e, err := StartEmbedded(ctx, cfg.DataDir, cfg.Embedded, log)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          e.ClientURLs(),
		DialTimeout:        dialTimeout(cfg),
		MaxCallSendMsgSize: maxMessageBytes,
		MaxCallRecvMsgSize: maxMessageBytes,
		Logger:             e.zapLogger(),
	})
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("connect to embedded etcd: %w", err)
	}
	s := New(cli, cfg.Prefix, log)
	s.embed = e
	return s, nil
}

func dialTimeout(cfg Config) time.Duration {
	if cfg.DialTimeout > 0 {
		return cfg.DialTimeout
	}
	return 5 * time.Second
}

func newClient(cfg Config) (*clientv3.Client, error) {
	var tlsCfg *tls.Config
	if cfg.CertFile != "" || cfg.KeyFile != "" || cfg.CAFile != "" {
		info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
		var err error
		if tlsCfg, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd client TLS: %w", err)
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          cfg.Endpoints,
		DialTimeout:        dialTimeout(cfg),
		TLS:                tlsCfg,
		MaxCallSendMsgSize: maxMessageBytes,
		MaxCallRecvMsgSize: maxMessageBytes,
		// A member cut off by the network, not dead, leaves its TCP
		// connection open and silent: requests sent to it would hang
		// until their deadline. Pings find it within about 13 s (gRPC's
		// floor for the ping interval is 10 s), and requests go to the
		// other members.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               quietZap(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return cli, nil
}

// New wraps an etcd client the caller owns. Close closes the client.
func New(cli *clientv3.Client, prefix string, log *slog.Logger) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if log == nil {
		log = slog.Default()
	}
	vals := &values{}
	cache := newDecodeCache(DefaultDecodeCacheSize)
	cache.vals = vals
	return &Store{
		client:  cli,
		prefix:  strings.TrimSuffix(prefix, "/"),
		log:     log,
		metrics: defaultMetrics,
		cache:   cache,
		vals:    vals,
	}
}

// Client returns the underlying etcd client, for tests and tools that act on
// etcd itself (compaction, leases). keelson's packages do not use it: what
// they need of etcd, leader election among it, is a method of Store.
func (s *Store) Client() *clientv3.Client { return s.client }

// Prefix returns the key prefix the store keeps its objects under.
func (s *Store) Prefix() string { return s.prefix }

// Endpoints returns the etcd endpoints the store talks to.
func (s *Store) Endpoints() []string { return s.client.Endpoints() }

// Ping reports whether etcd answers a linearizable read within ctx.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.client.Get(ctx, s.prefix+"/", clientv3.WithCountOnly(), clientv3.WithLimit(1))
	if err != nil {
		return fmt.Errorf("etcd at %s: %w", strings.Join(s.client.Endpoints(), ","), err)
	}
	return nil
}

// Close closes the etcd client and, when the store started it, stops the
// embedded etcd after it has flushed its data to disk.
func (s *Store) Close() error {
	err := s.client.Close()
	if s.embed != nil {
		s.embed.Close()
	}
	return err
}
