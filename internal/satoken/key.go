package satoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKey reads the ECDSA P-256 private key in the PEM file at path,
// in an "EC PRIVATE KEY" (SEC 1) or "PRIVATE KEY" (PKCS #8) block, or, when
// the file does not exist, makes a new key and writes it there as an "EC
// PRIVATE KEY" block, readable by the owner only (mode 0600; a directory it
// has to create gets 0700). Errors name the file.
//
// Of two processes creating the key at once, one writes it and both return
// that key: the file is written aside and then linked into place, which
// fails rather than replacing a key another process linked first.
func LoadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	return key, err
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read service account signing key: %w", err)
	}
	return parsePrivateKey(path, data)
}

func parsePrivateKey(path string, data []byte) (*ecdsa.PrivateKey, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("service account signing key %s: no private key found: want a PEM block \"EC PRIVATE KEY\" or \"PRIVATE KEY\" with an ECDSA P-256 key", path)
		}
		var key any
		var err error
		switch block.Type {
		case "EC PARAMETERS":
			// openssl ecparam -genkey writes the curve's name before the key.
			continue
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("service account signing key %s: PEM block %q is not a private key: want \"EC PRIVATE KEY\" or \"PRIVATE KEY\"", path, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("service account signing key %s: %s block: %w", path, block.Type, err)
		}
		ec, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("service account signing key %s: holds a %T, want an ECDSA P-256 key", path, key)
		}
		if ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("service account signing key %s: ECDSA key on curve %s, want P-256 (tokens are signed with ES256)", path, ec.Curve.Params().Name)
		}
		return ec, nil
	}
}

func createKey(path string) (*ecdsa.PrivateKey, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create service account signing key %s: %w", path, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create service account signing key %s: %w", path, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("create service account signing key %s: %w", path, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})

	tmp, err := writeAside(dir, filepath.Base(path), data)
	if tmp != "" {
		defer os.Remove(tmp)
	}
	if err != nil {
		return nil, fmt.Errorf("create service account signing key %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("create service account signing key %s: %w", path, err)
	}
	// Without this a crash could lose the name, and the next start would
	// make a new key, silently invalidating every token issued.
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("create service account signing key %s: %w", path, err)
	}
	return key, nil
}

// writeAside writes data to a new file of mode 0600 in dir and returns its
// name, also when writing fails, so that the caller removes it.
func writeAside(dir, base string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return f.Name(), err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return f.Name(), err
	}
	return f.Name(), f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// KeyID is the id of the key in the "kid" header of the tokens it signs:
// the unpadded base64url SHA-256 of the public key's PKIX (DER) form, as
// Kubernetes computes it, so one public key has one id wherever it is
// published. It is empty for a nil or invalid key.
func KeyID(pub *ecdsa.PublicKey) string {
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// MarshalPublicKey returns pub as a PEM "PUBLIC KEY" (PKIX) block, the form
// in which keys are published so that other servers verify tokens.
func MarshalPublicKey(pub *ecdsa.PublicKey) ([]byte, error) {
	if pub == nil {
		return nil, errors.New("marshal service account public key: no key")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal service account public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKey reads the first PEM block of pemBytes, which must be a
// "PUBLIC KEY" (PKIX) block holding an ECDSA P-256 key, as MarshalPublicKey
// writes it.
func ParsePublicKey(pemBytes []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("parse service account public key: no PEM block found: want \"PUBLIC KEY\"")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("parse service account public key: PEM block %q, want \"PUBLIC KEY\"", block.Type)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse service account public key: %w", err)
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("parse service account public key: holds a %T key, want ECDSA P-256", key)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("parse service account public key: ECDSA key on curve %s, want P-256", ec.Curve.Params().Name)
	}
	return ec, nil
}
