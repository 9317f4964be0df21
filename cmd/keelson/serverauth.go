package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/keelson/keelson/apiserver"
)

// adminKubeconfig is where `keelson server` writes a kubeconfig for the admin
// token it made.
func adminKubeconfig(dataDir string) string { return filepath.Join(dataDir, "admin.kubeconfig") }

// apiConfig loads what the API needs to authenticate and authorize, making
// the CA, certificate and admin token on first start.
func (o *serverOptions) apiConfig(log *slog.Logger) (apiserver.Config, error) {
	cfg := apiserver.Config{Addr: o.listen, Logger: log, AnonymousRead: o.anonymousRead}
	tokenFile := o.tokenFile
	if tokenFile == "" {
		tokenFile = filepath.Join(o.dataDir, "tokens.csv")
		if err := apiserver.EnsureTokenFile(tokenFile); err != nil {
			return cfg, fmt.Errorf("make the admin token file: %w", err)
		}
	}
	tokens, err := apiserver.LoadTokens(tokenFile)
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
		if cfg.TLS, err = apiserver.EnsureTLS(files, append(listenHosts(o.listen), o.tlsSANs...)); err != nil {
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
			err = os.WriteFile(adminKubeconfig(o.dataDir), kc, 0o600)
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
