package main

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/internal/satoken"
	"github.com/keelson/keelson/store"
)

// serviceAccountFlags are how the server signs the tokens of pods'
// ServiceAccounts.
type serviceAccountFlags struct {
	keyFile       string
	maxExpiration time.Duration
	// minExpiration is the least lifetime a token may ask for; tests lower
	// it to see tokens rotate.
	minExpiration time.Duration
}

// tokenKeyUse is what the servers' public keys are published under in etcd.
const tokenKeyUse = "serviceaccount"

func (s *serviceAccountFlags) add(f *pflag.FlagSet) {
	f.StringVar(&s.keyFile, "service-account-key-file", "", "ECDSA P-256 key that signs pods' ServiceAccount tokens, made there on first start (default <data-dir>/tls/service-account.key); servers sharing an etcd each publish their public key there and take each other's tokens")
	f.DurationVar(&s.maxExpiration, "service-account-max-token-expiration", 48*time.Hour, "the longest lifetime a ServiceAccount token gets; agents renew tokens at 80% of theirs")
}

// serviceAccountIssuer is the iss of tokens, Kubernetes' usual one.
func serviceAccountIssuer(clusterDomain string) string {
	return "https://kubernetes.default.svc." + clusterDomain
}

// serviceAccounts loads (or makes) the signing key and returns the API's
// token configuration; the key's public half is published by
// publishTokenKey once etcd answers.
func (o *serverOptions) serviceAccounts(st *store.Store) (*apiserver.ServiceAccountConfig, *ecdsa.PrivateKey, error) {
	path := o.serviceAccount.keyFile
	if path == "" {
		path = filepath.Join(o.dataDir, "tls", "service-account.key")
	}
	key, err := satoken.LoadOrCreateKey(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--service-account-key-file: %w", err)
	}
	issuer := serviceAccountIssuer(o.services.clusterDomain)
	kid := satoken.KeyID(&key.PublicKey)
	published := &apiserver.PublishedKeys{Store: st, Use: tokenKeyUse}
	return &apiserver.ServiceAccountConfig{
		Signer: satoken.NewSigner(key, issuer), Issuer: issuer, Audiences: []string{issuer},
		Keys: func(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
			if id == kid {
				return &key.PublicKey, nil
			}
			return published.Key(ctx, id)
		},
		MinExpiration: o.serviceAccount.minExpiration, MaxExpiration: o.serviceAccount.maxExpiration,
	}, key, nil
}

// publishTokenKey records the signing key's public half in etcd, so that
// the other servers take this one's tokens; it tries until etcd answers.
func publishTokenKey(ctx context.Context, st *store.Store, key *ecdsa.PrivateKey, log *slog.Logger) {
	pub, err := satoken.MarshalPublicKey(&key.PublicKey)
	if err != nil {
		log.Error("publishing the ServiceAccount token key", "err", err)
		return
	}
	delay := 100 * time.Millisecond
	for {
		err := st.PublishKey(ctx, tokenKeyUse, satoken.KeyID(&key.PublicKey), pub)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("publishing the ServiceAccount token key", "err", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// rootCA is the API's CA certificate, for pods to trust it; none without TLS.
func (o *serverOptions) rootCA() ([]byte, error) {
	if !o.tls {
		return nil, nil
	}
	return os.ReadFile(apiserver.TLSFilesIn(o.dataDir).CACert)
}
