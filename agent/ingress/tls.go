package ingress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Errors of certCache.load.
var (
	errSecretNotFound = errors.New("does not exist")
	errSecretInvalid  = errors.New("holds no usable certificate and key")
)

// certificate serves the certificate of the client's server name (SNI):
// its host's from the current table, else the default one.
func (p *Proxy) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if name := hostOnly(hello.ServerName); name != "" {
		if c := p.table.Load().certificate(name); c != nil {
			return c, nil
		}
	}
	return p.fallback, nil
}

// certCache keeps each TLS Secret's parsed certificate for its
// resourceVersion, so that a certificate is parsed once per change of its
// Secret, not once per build nor per handshake. Only the builder uses it.
type certCache struct {
	entries map[string]*certEntry
	used    map[string]bool
	parses  int // how many Secrets were parsed, for tests
}

type certEntry struct {
	uid     types.UID
	version string
	cert    *tls.Certificate
	err     error
}

func newCertCache() *certCache {
	return &certCache{entries: map[string]*certEntry{}, used: map[string]bool{}}
}

// load returns the certificate of Secret namespace/name; s is the Secret,
// nil when it does not exist. Errors wrap errSecretNotFound or
// errSecretInvalid and never hold the Secret's data.
func (c *certCache) load(namespace, name string, s *corev1.Secret) (*tls.Certificate, error) {
	key := namespace + "/" + name
	c.used[key] = true
	if s == nil {
		return nil, fmt.Errorf("secret %q of namespace %q %w", name, namespace, errSecretNotFound)
	}
	if e := c.entries[key]; e != nil && e.uid == s.UID && e.version == s.ResourceVersion {
		return e.cert, e.err
	}
	cert, err := parseSecret(s)
	c.parses++
	c.entries[key] = &certEntry{uid: s.UID, version: s.ResourceVersion, cert: cert, err: err}
	return cert, err
}

// sweep forgets the Secrets the last build did not load.
func (c *certCache) sweep() {
	for k := range c.entries {
		if !c.used[k] {
			delete(c.entries, k)
		}
	}
	clear(c.used)
}

// parseSecret reads tls.crt and tls.key, whatever the Secret's type.
func parseSecret(s *corev1.Secret) (*tls.Certificate, error) {
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return nil, fmt.Errorf("secret %q of namespace %q %w (it needs both %s and %s)", s.Name, s.Namespace, errSecretInvalid, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("secret %q of namespace %q %w (%s)", s.Name, s.Namespace, errSecretInvalid, strings.TrimPrefix(err.Error(), "tls: "))
	}
	return &cert, nil
}

// selfSigned makes the default certificate, served to TLS clients of hosts
// without a certificate of their own.
func selfSigned(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"keelson"}, CommonName: "keelson ingress default certificate"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
