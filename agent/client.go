package agent

import (
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// NewClient returns a client of keelson's API for an agent: the server's URL,
// the node's bearer token and, for HTTPS, the CA that signed the server's
// certificate (empty trusts the system's roots).
func NewClient(server, token, caFile string) (kubernetes.Interface, error) {
	cfg := &rest.Config{
		Host:        server,
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
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("API client for %s: %w", server, err)
	}
	return client, nil
}
