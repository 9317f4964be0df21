package satoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateKeyCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys")
	path := filepath.Join(dir, "sa.key")

	key, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{path, 0o600}, {dir, 0o700}, {filepath.Dir(dir), 0o700}} {
		info, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, got, c.mode)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("key directory holds %d files, want only the key: %v", len(entries), entries)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "EC PRIVATE KEY" {
		t.Errorf("key file is not one EC PRIVATE KEY block:\n%s", data)
	}

	again, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if KeyID(&again.PublicKey) != KeyID(&key.PublicKey) || !again.Equal(key) {
		t.Errorf("second LoadOrCreateKey returned another key")
	}
}

func TestLoadOrCreateKeyConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sa.key")
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = KeyID(&key.PublicKey)
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent calls returned different keys: %v", ids)
		}
	}
}

func TestLoadOrCreateKeyReads(t *testing.T) {
	key := newKey(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"PKCS #8", pemBlock("PRIVATE KEY", pkcs8)},
		{"SEC 1", pemBlock("EC PRIVATE KEY", sec1)},
		// as openssl ecparam -genkey writes it
		{"SEC 1 after EC PARAMETERS", append(pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}), pemBlock("EC PRIVATE KEY", sec1)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sa.key")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadOrCreateKey(path)
			if err != nil {
				t.Fatal(err)
			}
			if KeyID(&got.PublicKey) != KeyID(&key.PublicKey) || !got.Equal(key) {
				t.Errorf("read another key")
			}
		})
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKCS8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, err := x509.MarshalECPrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not PEM", []byte("this is not a key\n"), "no private key found"},
		{"empty", nil, "no private key found"},
		{"corrupt key", pemBlock("EC PRIVATE KEY", []byte("garbage")), "EC PRIVATE KEY block"},
		{"corrupt PKCS #8", pemBlock("PRIVATE KEY", []byte("garbage")), "PRIVATE KEY block"},
		{"RSA key", pemBlock("PRIVATE KEY", rsaPKCS8), "holds a *rsa.PrivateKey, want an ECDSA P-256 key"},
		{"P-384 key", pemBlock("EC PRIVATE KEY", p384DER), "curve P-384, want P-256"},
		{"certificate", pemBlock("CERTIFICATE", []byte("x")), `PEM block "CERTIFICATE" is not a private key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sa.key")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateKey(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadOrCreateKey = %v, want an error naming %s and saying %q", err, path, tc.want)
			}
			if after, _ := os.ReadFile(path); string(after) != string(tc.data) {
				t.Errorf("the refused file was changed")
			}
		})
	}
}

func TestLoadOrCreateKeyUnreadable(t *testing.T) {
	// A directory where the key should be: reading fails, and nothing is
	// created in its place.
	path := t.TempDir()
	_, err := LoadOrCreateKey(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadOrCreateKey = %v, want an error naming %s", err, path)
	}
}

func TestPublicKeyRoundTrip(t *testing.T) {
	key := newKey(t)
	data, err := MarshalPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "-----BEGIN PUBLIC KEY-----\n") {
		t.Errorf("MarshalPublicKey wrote\n%s", data)
	}
	pub, err := ParsePublicKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(&key.PublicKey) || KeyID(pub) != KeyID(&key.PublicKey) {
		t.Errorf("ParsePublicKey returned another key")
	}

	// A verifier holding only the published key accepts the signer's tokens.
	f := newFixture(t)
	f.signer = NewSigner(key, testIssuer)
	f.verifier.Keys = func(kid string) (*ecdsa.PublicKey, error) {
		if kid != KeyID(pub) {
			return nil, ErrUnknownKey
		}
		return pub, nil
	}
	if _, err := f.verifier.Verify(f.sign(t, fullClaims()), nil, testNow); err != nil {
		t.Errorf("Verify with the published key: %v", err)
	}

	if _, err := MarshalPublicKey(nil); err == nil {
		t.Errorf("MarshalPublicKey(nil) succeeded")
	}
}

func TestParsePublicKeyRefuses(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, err := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not PEM", []byte("ssh-ed25519 AAAA"), "no PEM block"},
		{"private key", pemBlock("EC PRIVATE KEY", sec1), `PEM block "EC PRIVATE KEY", want "PUBLIC KEY"`},
		{"corrupt", pemBlock("PUBLIC KEY", []byte("garbage")), "parse service account public key"},
		{"RSA key", pemBlock("PUBLIC KEY", rsaDER), "*rsa.PublicKey"},
		{"P-384 key", pemBlock("PUBLIC KEY", p384DER), "curve P-384"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicKey(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePublicKey = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
