package agent

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// NewClient returns a client of keelson's API for an agent: the URLs of the
// API servers (one, or several of one control plane, which it fails over
// between), the node's bearer token and, for HTTPS, the CA that signed the
// servers' certificates (empty trusts the system's roots). log, when not
// nil, hears of fail-overs.
func NewClient(servers []string, token, caFile string, log *slog.Logger) (kubernetes.Interface, error) {
	urls, err := parseServers(servers)
	if err != nil {
		return nil, err
	}
	cfg := &rest.Config{
		Host:        urls[0].String(),
		BearerToken: strings.TrimSpace(token),
		// keelson's API speaks JSON; client-go would send protobuf otherwise.
		ContentConfig: rest.ContentConfig{ContentType: "application/json", AcceptContentTypes: "application/json"},
		QPS:           50,
		Burst:         100,
		UserAgent:     "keelson-agent",
	}
	if caFile != "" {
		if _, err := os.Stat(caFile); err != nil {
			return nil, fmt.Errorf("API CA file: %w", err)
		}
		cfg.TLSClientConfig.CAFile = caFile
	}
	if len(urls) > 1 {
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return &failover{next: rt, servers: urls, log: log}
		}
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("API client for %s: %w", strings.Join(servers, ","), err)
	}
	return client, nil
}
