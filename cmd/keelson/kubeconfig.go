package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/ui"
)

func newKubeconfigCmd() *cobra.Command {
	var dataDir, server, token, user, caFile string
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print a kubeconfig for the keelson API, so kubectl works with --kubeconfig",
		Long: `Print a kubeconfig for the keelson API. The token is --token, or the token of
--user in the server's token file (<data-dir>/tokens.csv); the CA is --ca-file, or
the one the server generated in <data-dir>/tls/ca.crt.

  keelson kubeconfig > ~/.kube/keelson && kubectl --kubeconfig ~/.kube/keelson get pods -A`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				path := filepath.Join(dataDir, "tokens.csv")
				tokens, err := apiserver.LoadTokens(path)
				if err != nil {
					return fmt.Errorf("%w (pass --token, or --data-dir of the server)", err)
				}
				t, ok := tokens.TokenFor(user)
				if !ok {
					return fmt.Errorf("no token for user %q in %s: pass --token or another --user", user, path)
				}
				token = t
			}
			if caFile == "" {
				caFile = apiserver.TLSFilesIn(dataDir).CACert
			}
			var caPEM []byte
			if u := server; len(u) >= 8 && u[:8] == "https://" {
				b, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("the API's CA: %w (pass --ca-file, or --data-dir of the server)", err)
				}
				caPEM = b
			}
			kc, err := apiserver.Kubeconfig(server, caPEM, user, token)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(kc)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", defaultDataDir(), "the server's data dir, for its token file and CA")
	f.StringVar(&server, "server", "https://127.0.0.1:7443", "the API's URL")
	f.StringVar(&token, "token", "", "bearer token (default: --user's token from the token file)")
	f.StringVar(&user, "user", apiserver.AdminUser, "user whose token to use, and the name in the kubeconfig")
	f.StringVar(&caFile, "ca-file", "", "CA certificate to trust (default <data-dir>/tls/ca.crt)")
	return cmd
}

// clientFlags are how the read-only commands reach the API.
type clientFlags struct {
	kubeconfig string
	dataDir    string
}

func (c *clientFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig to use (default $KUBECONFIG, else <data-dir>/admin.kubeconfig)")
	cmd.Flags().StringVar(&c.dataDir, "data-dir", defaultDataDir(), "the server's data dir, for its admin kubeconfig")
}

func (c *clientFlags) restConfig() (*rest.Config, error) {
	path := c.kubeconfig
	if path == "" {
		path = os.Getenv("KUBECONFIG")
	}
	if path == "" {
		path = adminKubeconfig(c.dataDir)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w (make one with `keelson kubeconfig`)", path, err)
	}
	return cfg, nil
}

// adminKubeconfig is where `keelson server` writes a kubeconfig for the admin
// token it made.
func adminKubeconfig(dataDir string) string { return filepath.Join(dataDir, "admin.kubeconfig") }

// apiConfig loads what the API needs to authenticate and authorize, making
// the CA, certificate and admin token on first start.
func (o *serverOptions) apiConfig(log *slog.Logger) (apiserver.Config, error) {
	cfg := apiserver.Config{Addr: o.listen, Logger: log, AnonymousRead: o.anonymousRead, Profiling: o.profiling}
	if o.ui {
		cfg.UI = func(api http.Handler) http.Handler { return ui.New(ui.Config{API: api, Logger: log}) }
	}
	tokenFile := o.tokenFile
	if tokenFile == "" {
		tokenFile = filepath.Join(o.dataDir, "tokens.csv")
		if err := apiserver.EnsureTokenFile(tokenFile); err != nil {
			return cfg, fmt.Errorf("make the admin token file: %w", err)
		}
	}
	tokens, err := loadTokens(tokenFile, o.extraTokens)
	if err != nil {
		return cfg, err
	}
	cfg.Tokens = tokens
	if o.authzFile != "" {
		if cfg.Grants, err = apiserver.LoadGrants(o.authzFile); err != nil {
			return cfg, err
		}
	}
	var caPEM []byte
	scheme := "http"
	if o.tls {
		files := apiserver.TLSFilesIn(o.dataDir)
		// Pods reach the API as the kubernetes service, by its cluster IP
		// (client-go's in-cluster config) or its names.
		hosts := append(listenHosts(o.listen), o.tlsSANs...)
		hosts = append(hosts, o.serviceCIDR.APIServerIP().String(), "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc."+o.services.clusterDomain)
		if cfg.TLS, err = apiserver.EnsureTLS(files, hosts); err != nil {
			return cfg, fmt.Errorf("TLS: %w", err)
		}
		if caPEM, err = os.ReadFile(files.CACert); err != nil {
			return cfg, err
		}
		scheme = "https"
	}
	if token, ok := tokens.TokenFor(apiserver.AdminUser); ok {
		kc, err := apiserver.Kubeconfig(scheme+"://"+dialAddr(o.listen), caPEM, apiserver.AdminUser, token)
		if err == nil {
			// Whole or not at all: kubectl and clients read it while the
			// server starts, and must never see it half written.
			err = writeFileAtomic(adminKubeconfig(o.dataDir), kc, 0o600)
		}
		if err != nil {
			return cfg, fmt.Errorf("write the admin kubeconfig: %w", err)
		}
		log.Info("admin kubeconfig written", "path", adminKubeconfig(o.dataDir))
	}
	return cfg, nil
}

// listenHosts are the names the serving certificate needs for addr: its host,
// or every interface address when it listens on all of them.
func listenHosts(addr string) []string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsUnspecified() {
		return []string{host}
	}
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP.String())
		}
	}
	return out
}

// dialAddr is the address a local client dials for a listen address.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
