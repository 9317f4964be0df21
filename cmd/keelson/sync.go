package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/internal/version"
)

func newSyncCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Act on the server's syncs",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newSyncNowCmd())
	return cmd
}

type syncNowOptions struct {
	clientFlags
	secretFile string
	configFile string
}

func newSyncNowCmd() *cobra.Command {
	o := &syncNowOptions{}
	cmd := &cobra.Command{
		Use:   "now SYNC",
		Short: "Make a sync poll its repository now, as a push webhook does",
		Long: `Make a sync poll its repository now instead of at its next interval. The
request is the one a GitHub push webhook sends: POST /hooks/SYNC on the API's
address from the kubeconfig, signed with the sync's webhook secret, which is
--secret-file, or the webhook.secretFile of SYNC in the server's --config file.`,
		Example: `  keelson sync now apps --config /etc/keelson/keelson.yaml
  keelson sync now apps --secret-file /etc/keelson/apps.secret --kubeconfig admin.kubeconfig`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), args[0])
		},
	}
	o.clientFlags.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.secretFile, "secret-file", "", "the file holding the sync's webhook secret")
	f.StringVar(&o.configFile, "config", "", "the server's config file, to take the sync's webhook.secretFile from")
	return cmd
}

func (o *syncNowOptions) run(ctx context.Context, out io.Writer, name string) error {
	secret, err := o.secret(name)
	if err != nil {
		return err
	}
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	// The hook is authenticated by its signature: the kubeconfig gives the
	// address and the CA only, and no token is sent.
	tlsCfg, err := rest.TLSConfigFor(&rest.Config{Host: cfg.Host, TLSClientConfig: cfg.TLSClientConfig})
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment}}
	body, err := json.Marshal(map[string]string{"sync": name, "sender": "keelson sync now"})
	if err != nil {
		return err
	}
	target := strings.TrimRight(cfg.Host, "/") + gitsync.HookPrefix + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keelson/"+version.Version)
	req.Header.Set(gitsync.HeaderGitHubSignature, gitsync.SignHook(secret, body))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", target, err)
	}
	defer resp.Body.Close()
	var answer gitsync.HookResponse
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(raw, &answer); err != nil || answer.Message == "" {
		return fmt.Errorf("POST %s: %s: %s (is this a keelson server?)", target, resp.Status, strings.TrimSpace(string(raw)))
	}
	switch resp.StatusCode {
	case http.StatusAccepted:
		fmt.Fprintf(out, "%s\n`keelson status %s` shows how it went.\n", answer.Message, name)
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("the server at %s has no sync named %q", cfg.Host, name)
	case http.StatusUnauthorized:
		return fmt.Errorf("the server refused the secret of sync %q: %s (is %s the secret file the server's config names for it?)", name, answer.Message, o.secretSource())
	}
	return fmt.Errorf("the server answered %s: %s", resp.Status, answer.Message)
}

// secret reads the sync's webhook secret from --secret-file or --config.
func (o *syncNowOptions) secret(name string) ([]byte, error) {
	path := o.secretFile
	switch {
	case o.secretFile != "" && o.configFile != "":
		return nil, fmt.Errorf("--secret-file and --config both given: pass one")
	case o.configFile != "":
		srcs, err := gitsync.LoadConfigFile(o.configFile)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range srcs {
			names = append(names, s.Name)
			if s.Name == name {
				path = s.WebhookSecretFile
				if path == "" {
					return nil, fmt.Errorf("sync %q has no webhook.secretFile in %s, so the server takes no hooks for it: add one and restart the server", name, o.configFile)
				}
			}
		}
		if path == "" {
			return nil, fmt.Errorf("%s has no sync named %q; it has %s", o.configFile, name, strings.Join(names, ", "))
		}
	case path == "":
		return nil, fmt.Errorf("pass --secret-file with the sync's webhook secret, or --config with the server's config file")
	}
	secret, err := gitsync.ReadHookSecret(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secret of sync %q: %w", name, err)
	}
	return secret, nil
}

func (o *syncNowOptions) secretSource() string {
	if o.secretFile != "" {
		return o.secretFile
	}
	return "the webhook.secretFile in " + o.configFile
}
