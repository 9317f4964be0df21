package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// TLSFiles are where the generated CA and serving certificate live.
type TLSFiles struct {
	CACert, CAKey, Cert, Key string
}

// TLSFilesIn returns the TLS file paths under a data dir's tls/ folder.
func TLSFilesIn(dataDir string) TLSFiles {
	d := filepath.Join(dataDir, "tls")
	return TLSFiles{
		CACert: filepath.Join(d, "ca.crt"), CAKey: filepath.Join(d, "ca.key"),
		Cert: filepath.Join(d, "server.crt"), Key: filepath.Join(d, "server.key"),
	}
}

// EnsureTLS loads the serving certificate, generating a CA on first start and
// a serving certificate signed by it whenever the current one lacks a name in
// hosts (localhost and loopback are always included) or is near its end.
func EnsureTLS(f TLSFiles, hosts []string) (*tls.Config, error) {
	names := append([]string{"localhost", "127.0.0.1", "::1"}, hosts...)
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	ca, caKey, err := loadOrCreateCA(f)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil || !covers(cert, names, ca) {
		if err := writeServing(f, ca, caKey, names); err != nil {
			return nil, err
		}
		if cert, err = tls.LoadX509KeyPair(f.Cert, f.Key); err != nil {
			return nil, fmt.Errorf("load serving certificate: %w", err)
		}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}, nil
}

func loadOrCreateCA(f TLSFiles) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if pair, err := tls.LoadX509KeyPair(f.CACert, f.CAKey); err == nil {
		ca, err := x509.ParseCertificate(pair.Certificate[0])
		key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
		if err == nil && ok {
			return ca, key, nil
		}
		return nil, nil, fmt.Errorf("CA in %s is not an ECDSA CA keelson made: move it away to make a new one", f.CACert)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("load CA %s: %w", f.CACert, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "keelson-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(f.CACert, f.CAKey, der, key); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

func writeServing(f TLSFiles, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "keelson-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writePair(f.Cert, f.Key, der, key)
}

// covers says whether cert was signed by ca, names every host, and has more
// than a month left.
func covers(cert tls.Certificate, names []string, ca *x509.Certificate) bool {
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || leaf.CheckSignatureFrom(ca) != nil || time.Until(leaf.NotAfter) < 30*24*time.Hour {
		return false
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if n != "" && !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
