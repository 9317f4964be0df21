package gitsync

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/gitsync/render"
	"github.com/keelson/keelson/gitsync/sops"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// ErrConfig marks a sync configuration that cannot work.
var ErrConfig = errors.New("gitsync: invalid configuration")

// Config is one sync as `keelson server --repo --ref --path` describes it.
type Config struct {
	// Name of the sync, the value of label keelson.dev/source on its objects;
	// "default" when empty. Must not change for a repository once synced:
	// objects are owned by name.
	Name string
	// Repo is the URL of a remote Git repository (https://, http://, ssh://,
	// user@host:path, file://), the path of a local Git repository (work tree
	// or bare), or of a plain directory, which is synced as it is, without
	// Git. Required.
	Repo string
	// Ref is the branch, tag or commit to sync; HEAD when empty. For a remote
	// repository a commit is a full 40-character hash. Must be empty for a
	// plain directory.
	Ref string
	// Path is the folder inside the repository to read; the whole tree when
	// empty.
	Path string
	// Interval between polls; DefaultInterval when zero.
	Interval time.Duration
	// Resync re-applies an unchanged revision this often (drift correction);
	// never when zero.
	Resync time.Duration
	// TargetNamespace, Prune, AllowEmpty, MaxTxnOps and MaxTxnBytes: see Syncer.
	TargetNamespace string
	Prune           bool
	AllowEmpty      bool
	MaxTxnOps       int
	MaxTxnBytes     int
	// ServiceCIDR and NodePorts: see Syncer; the server sets them from its
	// --service-cidr and --service-node-port-range for every source.
	ServiceCIDR servicenet.CIDR
	NodePorts   servicenet.PortRange
	// Suspend stops syncing while set: the loop polls nothing and the
	// cluster keeps the last applied revision.
	Suspend bool
	// CacheDir holds the clones of remote repositories (<CacheDir>/<Name>);
	// required for a remote Repo.
	CacheDir string
	// Auth authenticates to a remote repository.
	Auth Auth
	// VerifyKeysFile, when set, names a file of armored OpenPGP public keys:
	// only commits signed by one of them are applied.
	VerifyKeysFile string
	// WebhookSecretFile names a file whose content is the secret that a
	// webhook for this sync must prove (GitHub HMAC or GitLab token).
	WebhookSecretFile string
	// Charts fetches the charts of HelmCharts naming a chart repository;
	// nil refuses them. The server gives every sync the same one.
	Charts render.ChartFetcher
	// Decryption and RequireEncryptedSecrets: see Syncer. The server gives
	// every sync the keys of its --decryption-key-file.
	Decryption              *sops.Keys
	RequireEncryptedSecrets bool
	// DependsOn names the sources whose Sync must be Ready and Healthy, for
	// the revision they applied last, before this one applies a revision.
	// A name Syncs does not run, or a cycle, is refused.
	DependsOn []string
	// Wait, Timeout and Logs: see Syncer.
	Wait    bool
	Timeout time.Duration
	Logs    LogReader
	// Rollback (onFailure: rollback) re-applies the last revision that was
	// applied and Healthy when a revision fails a hook or a health check
	// after writing; it needs Wait, which is how that revision is known.
	Rollback bool
}

// OnFailureRollback is the onFailure value that turns Config.Rollback on.
const OnFailureRollback = "rollback"

// sameConfig reports whether two configs describe the same sync.
func sameConfig(a, b Config) bool {
	ad, bd := a.DependsOn, b.DependsOn
	a.DependsOn, b.DependsOn = nil, nil
	return slices.Equal(ad, bd) && reflect.DeepEqual(a, b)
}

// Auth is how a sync authenticates to a remote repository; at most one of
// the https or ssh pairs applies, by the URL's scheme.
type Auth struct {
	// TokenFile holds a bearer token for https (a GitHub or GitLab token).
	TokenFile string
	// BasicAuthFile holds "username:password" for https.
	BasicAuthFile string
	// SSHKeyFile is a private key for ssh URLs.
	SSHKeyFile string
	// KnownHostsFile lists the ssh host keys trusted; ssh without it is refused.
	KnownHostsFile string
}

// New returns the loop of one sync; run it with Loop.Run. cache may be nil.
// Errors: ErrConfig (naming the field).
func New(cfg Config, st *store.Store, sch *schema.Schema, cache *schema.Cache, log *slog.Logger) (*Loop, error) {
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	if errs := validation.IsValidLabelValue(cfg.Name); len(errs) > 0 || strings.Contains(cfg.Name, ".") {
		return nil, fmt.Errorf("%w: sync name %q: must be a label value without dots: %s", ErrConfig, cfg.Name, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(targetOrDefault(cfg.TargetNamespace)); len(errs) > 0 {
		return nil, fmt.Errorf("%w: target namespace %q: %s", ErrConfig, cfg.TargetNamespace, strings.Join(errs, "; "))
	}
	if cfg.Rollback && !cfg.Wait {
		return nil, fmt.Errorf("%w: sync %s: onFailure rollback needs wait: the revision to go back to is the last one seen Healthy", ErrConfig, cfg.Name)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: sync %s: timeout %s is negative", ErrConfig, cfg.Name, cfg.Timeout)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "gitsync", "sync", cfg.Name)
	src, err := sourceFor(cfg, log)
	if err != nil {
		return nil, err
	}
	return &Loop{
		Source:    src,
		Interval:  cfg.Interval,
		Resync:    cfg.Resync,
		Suspend:   cfg.Suspend,
		Log:       log,
		DependsOn: slices.Clone(cfg.DependsOn),
		Rollback:  cfg.Rollback,
		Spec: keelsonv1alpha1.SyncSpec{
			URL: cfg.Repo, Ref: cfg.Ref, Path: cfg.Path, Interval: metav1.Duration{Duration: cmp.Or(cfg.Interval, DefaultInterval)},
			TargetNamespace: targetOrDefault(cfg.TargetNamespace), Prune: cfg.Prune, AllowEmpty: cfg.AllowEmpty,
			Suspend: cfg.Suspend, Verified: cfg.VerifyKeysFile != "",
			DependsOn: slices.Clone(cfg.DependsOn), Wait: cfg.Wait, Timeout: metav1.Duration{Duration: cmp.Or(cfg.Timeout, DefaultTimeout)},
			OnFailure: onFailureOf(cfg),
		},
		Syncer: &Syncer{
			Name: cfg.Name, Store: st, Schema: sch, Cache: cache,
			Path: strings.Trim(filepath.ToSlash(cfg.Path), "/"), TargetNamespace: cfg.TargetNamespace,
			Prune: cfg.Prune, AllowEmpty: cfg.AllowEmpty, MaxTxnOps: cfg.MaxTxnOps, MaxTxnBytes: cfg.MaxTxnBytes,
			ServiceCIDR: cfg.ServiceCIDR, NodePorts: cfg.NodePorts,
			Renderer:   chartRenderer(cfg.Charts),
			Decryption: cfg.Decryption, RequireEncryptedSecrets: cfg.RequireEncryptedSecrets,
			Wait: cfg.Wait, Timeout: cfg.Timeout, Logs: cfg.Logs, Log: log,
		},
	}, nil
}

func onFailureOf(cfg Config) string {
	if cfg.Rollback {
		return OnFailureRollback
	}
	return ""
}

// chartRenderer is the Renderer of a sync given chart repositories; nil
// leaves the Syncer to make its own.
func chartRenderer(charts render.ChartFetcher) *render.Renderer {
	if charts == nil {
		return nil
	}
	r := render.New(render.Limits{})
	r.Charts = charts
	return r
}

func targetOrDefault(ns string) string {
	if ns == "" {
		return DefaultNamespace
	}
	return ns
}

// sourceFor picks the source of cfg.Repo: a remote Git repository when it is
// a URL, a local Git repository when go-git opens it, else a plain directory.
func sourceFor(cfg Config, log *slog.Logger) (Source, error) {
	if cfg.Repo == "" {
		return nil, fmt.Errorf("%w: --repo is required: the URL or path of a Git repository, or the path of a directory of manifests", ErrConfig)
	}
	opts := []GitOption{WithPath(cfg.Path), WithLogger(log)}
	if cfg.VerifyKeysFile != "" {
		if _, err := readKeyRing(cfg.VerifyKeysFile); err != nil {
			return nil, fmt.Errorf("%w: verify keys file %s: %v", ErrConfig, cfg.VerifyKeysFile, err)
		}
		opts = append(opts, WithVerifyKeys(cfg.VerifyKeysFile))
	}
	if isRemoteURL(cfg.Repo) {
		if err := checkRemote(cfg); err != nil {
			return nil, err
		}
		return NewRemoteGit(cfg.Repo, cfg.Ref, filepath.Join(cfg.CacheDir, cfg.Name), cfg.Auth, opts...), nil
	}
	if cfg.Auth != (Auth{}) {
		return nil, fmt.Errorf("%w: repository %s is a local path: credentials files apply to remote URLs only", ErrConfig, cfg.Repo)
	}
	info, err := os.Stat(cfg.Repo)
	if err != nil {
		return nil, fmt.Errorf("%w: repository %s: %v", ErrConfig, cfg.Repo, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%w: repository %s is not a directory", ErrConfig, cfg.Repo)
	}
	if _, err := git.PlainOpen(cfg.Repo); err == nil {
		return NewLocalGit(cfg.Repo, cfg.Ref, opts...), nil
	}
	if cfg.Ref != "" {
		return nil, fmt.Errorf("%w: %s is not a Git repository, so --ref %s cannot apply; leave --ref empty to sync the directory as it is", ErrConfig, cfg.Repo, cfg.Ref)
	}
	if cfg.VerifyKeysFile != "" {
		return nil, fmt.Errorf("%w: %s is a plain directory, which has no commits to verify: drop --verify-keys-file, or sync a Git repository", ErrConfig, cfg.Repo)
	}
	return NewDir(cfg.Repo), nil
}
