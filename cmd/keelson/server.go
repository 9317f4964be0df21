package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/admission"
	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/gitsync/chartrepo"
	"github.com/keelson/keelson/gitsync/notification"
	"github.com/keelson/keelson/gitsync/sops"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/reconciler"
	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/reconciler/cloud/local"
	"github.com/keelson/keelson/store"
)

// serverOptions are the flags of `keelson server` (and, later, `keelson up`).
type serverOptions struct {
	sync             gitsync.Config
	configFile       string
	nodeGracePeriod  time.Duration
	clusterCIDR      string
	dataDir          string
	listen           string
	etcdEndpoints    []string
	etcdCert         string
	etcdKey          string
	etcdCA           string
	etcdListenClient string
	etcdListenPeer   string
	tls              bool
	tlsSANs          []string
	tokenFile        string
	authzFile        string
	anonymousRead    bool
	profiling        bool
	ui               bool

	// serviceCIDR and nodePortRange are what cluster IPs and node ports are
	// allocated from: the sync checks revisions against them and the
	// controllers allocate from them.
	serviceCIDR   servicenet.CIDR
	nodePortRange servicenet.PortRange
	services      serviceFlags
	// cloudProvider and lbPool are --cloud-provider and --lb-pool: what
	// gives LoadBalancer services their addresses.
	cloudProvider string
	lbPool        []string

	// extraTokens are more token-file lines, kept in memory only: keelson
	// up's local agent's node token.
	extraTokens string
	// chartRepositories are the chart repositories HelmCharts may name;
	// charts fetches from them, made once so that every sync (and every
	// reload of the config file) shares its cache.
	chartRepositories []string
	charts            *chartrepo.Fetcher
	// decryptionKeyFiles are --decryption-key-file; decryption holds their
	// keys, read once at start (a missing or bad file stops the server).
	decryptionKeyFiles []string
	decryption         *sops.Keys
	// encryptionKeyFile is --encryption-key-file: the keys that seal
	// Secrets in etcd ("" is <data-dir>/encryption-keys.yaml).
	encryptionKeyFile string

	// onSyncStatus, when set, gets the sync's status after every attempt
	// (keelson up's progress display).
	onSyncStatus func(gitsync.Status)
	// onFailure is --on-failure, made into sync.Rollback.
	onFailure string
	// notifications is the --config file's notifications section; notify
	// delivers it, while this server leads.
	notifications gitsync.Notifications
	notify        *notification.Dispatcher
	// logs reads failed hooks' logs for the syncs.
	logs gitsync.LogReader

	leaderTTL time.Duration
	// hpa tunes the autoscaler (--horizontal-pod-autoscaler-*).
	hpa reconciler.HPAOptions
	// serviceAccount is how pods' ServiceAccount tokens are signed.
	serviceAccount serviceAccountFlags
}

// identity names this server in the leader election: its host and API
// address, which tell an operator where the leader is.
func (o *serverOptions) identity() string {
	host, _ := os.Hostname()
	return host + "@" + o.listen
}

func (o *serverOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.sync.Repo, "repo", "", "the Git repository whose manifests are the cluster's desired state: a URL (https://, ssh://, git@host:repo, file://), a local repository's path, or a plain directory")
	f.StringVar(&o.sync.Ref, "ref", "", "the branch, tag or commit of --repo to sync (default HEAD)")
	f.StringVar(&o.sync.Auth.TokenFile, "git-token-file", "", "remote https --repo: a file holding a GitHub or GitLab access token")
	f.StringVar(&o.sync.Auth.BasicAuthFile, "git-basic-auth-file", "", `remote https --repo: a file holding "username:password"`)
	f.StringVar(&o.sync.Auth.SSHKeyFile, "git-ssh-key-file", "", "remote ssh --repo: a private key file (no passphrase)")
	f.StringVar(&o.sync.Auth.KnownHostsFile, "git-known-hosts-file", "", "remote ssh --repo: the host keys trusted (required for ssh)")
	f.StringVar(&o.sync.VerifyKeysFile, "verify-keys-file", "", "apply only commits signed by one of the armored OpenPGP public keys in this file")
	f.StringVar(&o.sync.WebhookSecretFile, "webhook-secret-file", "", "accept webhooks (POST /hooks/<sync-name>) proven with the secret in this file")
	f.StringVar(&o.sync.Path, "path", "", "the folder of --repo to read (default the whole tree)")
	f.StringVar(&o.sync.Name, "sync-name", "default", "the sync's name: label keelson.dev/source on the objects it owns")
	f.DurationVar(&o.sync.Interval, "sync-interval", gitsync.DefaultInterval, "poll --repo at least this often (it is also watched for changes)")
	f.DurationVar(&o.sync.Resync, "resync", 10*time.Minute, "re-apply an unchanged revision this often, putting back changes made behind Git's back (0: never)")
	f.StringVar(&o.sync.TargetNamespace, "target-namespace", "default", "namespace of namespaced objects that name none")
	f.BoolVar(&o.sync.Prune, "prune", true, "delete objects that left Git")
	f.BoolVar(&o.sync.AllowEmpty, "allow-empty", false, "apply a revision that would delete every object of the sync")
	f.BoolVar(&o.sync.RequireEncryptedSecrets, "require-encrypted-secrets", false, "refuse a revision with a Secret in a file not encrypted with sops")
	f.BoolVar(&o.sync.Wait, "wait", false, "a sync attempt succeeds only when every object of the revision is Healthy within --sync-timeout")
	f.DurationVar(&o.sync.Timeout, "sync-timeout", gitsync.DefaultTimeout, "how long each wave of a revision, each hook, and --wait may take to be Healthy or done")
	f.StringVar(&o.onFailure, "on-failure", "none", `"rollback": a revision that fails its hooks or health check goes back to the last Healthy one (needs --wait)`)
	f.StringArrayVar(&o.decryptionKeyFiles, "decryption-key-file", nil, "age keys (age-keygen's AGE-SECRET-KEY-1… lines) that open the manifests encrypted with sops, for every sync; repeat for more (a key is rotated by adding the new one)")
	f.StringVar(&o.encryptionKeyFile, "encryption-key-file", "", "the keys that encrypt Secrets in etcd (YAML keys: [{name, secret: 32 bytes base64}]; the first encrypts, all decrypt); default <data-dir>/encryption-keys.yaml, made on first start. Every server on one etcd needs the same file")
	f.StringArrayVar(&o.chartRepositories, "chart-repository", nil, "a Helm chart repository (https:// URL of its index.yaml's folder, or oci://host/path of a registry) HelmCharts may fetch charts from (spec.repoURL); repeat for more; none: charts must be vendored into Git")
	f.StringVar(&o.configFile, "config", "", "a ServerConfig file listing the repositories to sync, with their webhook secrets; instead of --repo and the flags of its sync")
	f.DurationVar(&o.nodeGracePeriod, "node-monitor-grace-period", 40*time.Second, "a node whose lease is not renewed for this long becomes Ready=Unknown and is tainted unreachable")
	f.DurationVar(&o.hpa.SyncPeriod, "horizontal-pod-autoscaler-sync-period", 15*time.Second, "how often each HorizontalPodAutoscaler is computed again")
	f.DurationVar(&o.hpa.DownscaleStabilization, "horizontal-pod-autoscaler-downscale-stabilization", 5*time.Minute, "an autoscaler whose behavior sets no scale-down window scales down to the highest count it recommended within this long")
	f.DurationVar(&o.leaderTTL, "leader-lease-duration", 10*time.Second, "with several servers on one etcd: how long the leader's etcd lease lasts, so about how soon another server takes over the controllers and syncs when it dies")
	f.StringVar(&o.clusterCIDR, "cluster-cidr", "10.42.0.0/16", "pod addresses of the cluster, split into a /24 per node")
	// The defaults are constants that parse: Set cannot fail on them.
	_ = cidrFlag{&o.serviceCIDR}.Set(servicenet.DefaultServiceCIDR)
	_ = portRangeFlag{&o.nodePortRange}.Set(servicenet.DefaultNodePortRange)
	f.Var(cidrFlag{&o.serviceCIDR}, "service-cidr", "the IPv4 block Services get their cluster IPs from (the API is on its first address, cluster DNS on its tenth)")
	f.Var(portRangeFlag{&o.nodePortRange}, "service-node-port-range", "the ports NodePort Services open on every node, FIRST-LAST")
	o.services.add(f)
	o.serviceAccount.add(f)
	registerCloudProviders()
	f.StringVar(&o.cloudProvider, "cloud-provider", local.Name, "the cloud provider that gives LoadBalancer services their addresses and nodes their zones: "+strings.Join(cloud.Names(), ", "))
	f.StringSliceVar(&o.lbPool, "lb-pool", nil, "with --cloud-provider local: the addresses LoadBalancer services get, as CIDRs or FIRST-LAST ranges (comma-separated or repeated); empty: the Ready nodes' own addresses")
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir(), "where keelson keeps its state (the embedded etcd's data among it)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:7443", "API listen address")
	f.StringSliceVar(&o.etcdEndpoints, "etcd-endpoints", nil, "external etcd cluster endpoints (comma-separated); empty runs an embedded etcd")
	f.StringVar(&o.etcdCert, "etcd-cert", "", "client certificate for the external etcd")
	f.StringVar(&o.etcdKey, "etcd-key", "", "client key for the external etcd")
	f.StringVar(&o.etcdCA, "etcd-ca", "", "CA bundle that signed the external etcd's certificates")
	f.StringVar(&o.etcdListenClient, "etcd-listen-client", "http://127.0.0.1:2379", "embedded etcd: client URL")
	f.StringVar(&o.etcdListenPeer, "etcd-listen-peer", "http://127.0.0.1:2380", "embedded etcd: peer URL")
	f.BoolVar(&o.tls, "tls", true, "serve HTTPS with a CA and certificate generated in <data-dir>/tls; --tls=false only on a loopback address, for development")
	f.StringSliceVar(&o.tlsSANs, "tls-san", nil, "more host names or IPs for the serving certificate (localhost and the --listen address are always in it)")
	f.StringVar(&o.tokenFile, "token-auth-file", "", `bearer tokens, one "token,user,uid,\"group1,group2\"" per line; default <data-dir>/tokens.csv, made with an admin token on first start`)
	f.StringVar(&o.authzFile, "authorization-file", "", "YAML read grants (users and groups to namespaces and secret values), the bootstrap beside RBAC from Git; what neither grants is refused (system:masters reads everything)")
	f.BoolVar(&o.anonymousRead, "anonymous-read", false, "take requests without a token as system:anonymous (group system:unauthenticated), who reads what RBAC or the authorization file grants it")
	f.BoolVar(&o.ui, "ui", true, "serve the read-only web view at /ui/ of the API address: sign in with an API token")
	f.BoolVar(&o.profiling, "profiling", true, "serve Go's profiles at /debug/pprof/ to members of system:masters")
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
	reg.MustRegister(gitsync.Collectors()...)
	reg.MustRegister(reconciler.Collectors()...)

	var st *store.Store
	ready := map[string]apiserver.Check{"etcd": func(ctx context.Context) error { return st.Ping(ctx) }}
	if !o.tls && !isLoopback(o.listen) {
		return fmt.Errorf("--tls=false is only for a loopback --listen address (got %s): tokens would cross the network in the clear", o.listen)
	}
	if o.leaderTTL < time.Second {
		return fmt.Errorf("--leader-lease-duration %s: want at least 1s, etcd's lease granularity", o.leaderTTL)
	}
	sources, err := o.syncSources()
	if err != nil {
		return err
	}
	// Take the port before starting etcd, so a taken port fails at once.
	l, err := apiserver.New(apiserver.Config{Addr: o.listen, Logger: log}).Listen()
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
	// After the store: it says first when the data dir is not writable.
	keys, err := o.encryptionKeys(log)
	if err != nil {
		return err
	}
	st.SetEncryption(keys)
	// Quotas and limit ranges hold for every write, from Git or a
	// controller.
	st.SetAdmitter(admission.New(st))
	cfg, err := o.apiConfig(log)
	if err != nil {
		return err
	}
	services, err := o.serviceOptions(log)
	if err != nil {
		return err
	}
	logs := &apiLogs{}
	o.logs = logs
	syncs, err := newSyncs(o, sources, st, log)
	if err != nil {
		return err
	}
	cfg.Store, cfg.Gatherer, cfg.Registerer, cfg.ReadyChecks = st, reg, reg, ready
	var tokenKey *ecdsa.PrivateKey
	if cfg.ServiceAccounts, tokenKey, err = o.serviceAccounts(st); err != nil {
		return err
	}
	rootCA, err := o.rootCA()
	if err != nil {
		return err
	}
	cfg.Hooks = &gitsync.Webhook{Syncs: syncs, Log: log}
	srv := apiserver.New(cfg)
	logs.srv = srv // before any sync runs: they run in the leader's term below

	// The controllers run while the API serves; a leader is elected among the
	// servers that share this etcd. They stop before the store closes.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Once etcd answers, this server must hold every key Secrets are sealed
	// with there, or it stops: it would fail to read them, and seal new ones
	// with a key the other servers lack.
	keysChecked, keysErr := make(chan struct{}), make(chan error, 1)
	go func() {
		if err := checkEncryptionKeys(ctx, st, log); err != nil {
			keysErr <- err
			cancel()
			return
		}
		close(keysChecked)
	}()
	go publishTokenKey(ctx, st, tokenKey, log)
	dnsDone, err := startClusterDNS(ctx, o, st, reg, log)
	if err != nil {
		return err
	}
	opts := reconciler.Options{
		NodeLifecycle:   reconciler.NodeLifecycleOptions{GracePeriod: o.nodeGracePeriod, ClusterCIDR: o.clusterCIDR},
		Services:        services,
		LeaderElection:  reconciler.LeaderElection{Disabled: true}, // the term below is the election
		HPA:             reconciler.HPAOptions{SyncPeriod: o.hpa.SyncPeriod, DownscaleStabilization: o.hpa.DownscaleStabilization, Metrics: apiPodMetrics{srv}},
		ServiceAccounts: reconciler.ServiceAccountOptions{RootCA: rootCA},
		CloudProvider:   o.cloudProvider,
		CloudConfig:     cloud.Config{LBPool: o.lbPool},
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	if len(sources) == 0 {
		log.Info("no --repo or --config: nothing is synced from Git")
	}
	if o.configFile != "" {
		defer reloadOnHangup(ctx, o, syncs, log)()
	}
	// Every server, leading or not, announces its address: the leader makes
	// them all the endpoints of the kubernetes and kube-dns services.
	announced := make(chan error, 1)
	if services.Address != "" {
		go func() {
			announced <- reconciler.AnnounceServer(ctx, st, log, reconciler.ServerAnnouncement{
				Identity: o.identity(), Address: services.Address, APIPort: services.APIPort, DNSPort: services.DNSPort})
		}()
	} else {
		announced <- nil
	}
	// One leader among the servers on this etcd runs the controllers and
	// the syncs; its writes are fenced by its term (store.Lead). The others
	// serve the API and pass webhooks on to it.
	leading := make(chan error, 1)
	go func() {
		select {
		case <-keysChecked:
		case <-ctx.Done():
			leading <- nil
			return
		}
		leading <- st.Lead(ctx, store.Election{Name: reconciler.ElectionName, TTL: o.leaderTTL, Identity: o.identity()},
			func(term context.Context) {
				var wg sync.WaitGroup
				wg.Go(func() {
					if err := reconciler.Run(term, st, log, opts); err != nil {
						log.Error("controllers", "err", err)
					}
				})
				wg.Go(func() { _ = syncs.Run(term) })
				if o.notify != nil {
					wg.Go(func() { _ = o.notify.Run(term) })
				}
				wg.Go(func() { reconciler.MirrorLeadership(term, st, log, o.identity(), o.leaderTTL) })
				wg.Go(func() { resealSecrets(term, st, keys, log) })
				wg.Go(func() {
					if err := gitsync.PublishRecipients(term, st, o.decryption); err != nil && term.Err() == nil {
						log.Warn("publishing the age recipients of --decryption-key-file", "err", err)
					}
				})
				wg.Wait()
			})
	}()
	err = srv.Serve(ctx, l)
	log.Info("shutting down")
	cancel()
	select {
	case kerr := <-keysErr:
		err = errors.Join(kerr, ignoreCanceled(err))
	default:
	}
	return errors.Join(err, <-leading, <-announced, dnsDone())
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

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// apiLogs reads hooks' logs for the syncs through the API's way to the
// agents.
type apiLogs struct{ srv *apiserver.Server }

func (a *apiLogs) TailLog(ctx context.Context, namespace, pod, container string, lines int) (string, error) {
	return a.srv.TailLog(ctx, namespace, pod, container, lines)
}

// apiPodMetrics gives the autoscaler the pods' usage from the API's
// resource metrics, each pod's the sum of its containers'.
type apiPodMetrics struct{ srv *apiserver.Server }

func (a apiPodMetrics) PodUsage(ctx context.Context) (map[types.NamespacedName]reconciler.PodUsage, error) {
	items, err := a.srv.PodMetrics(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[types.NamespacedName]reconciler.PodUsage, len(items))
	for _, m := range items {
		sum := corev1.ResourceList{}
		for _, c := range m.Containers {
			for r, q := range c.Usage {
				cur := sum[r]
				cur.Add(q)
				sum[r] = cur
			}
		}
		out[types.NamespacedName{Namespace: m.Namespace, Name: m.Name}] = reconciler.PodUsage{Timestamp: m.Timestamp.Time, Window: m.Window.Duration, Usage: sum}
	}
	return out, nil
}

// registerCloudProviders registers the cloud providers keelson offers
// beside none, once (commands are built again and again in tests).
var registerCloudProviders = sync.OnceFunc(func() { cloud.Register(local.Name, local.New) })
