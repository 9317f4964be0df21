package encryption

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"sigs.k8s.io/yaml"
)

// prefix starts every sealed value; the key's name and a colon follow.
const prefix = "keelson:enc:xchacha20poly1305:v1:"

// Errors of Open. ErrUnknownKey: the value names a key the file does not
// hold; ErrNotOpened: the key of that name is not the one the value was
// sealed with, or the value was changed.
var (
	ErrUnknownKey = errors.New("sealed under a key the encryption key file does not hold")
	ErrNotOpened  = errors.New("does not open with the key of its name (another key of that name, or a changed value)")
)

// File is the encryption key file's content.
type File struct {
	Keys []Key `json:"keys"`
}

// Key is one named 256-bit key, base64 in the file.
type Key struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// Keys seal with the first key of a file and open with any of them. They
// satisfy store.Transformer.
type Keys struct {
	path    string
	primary string
	aeads   map[string]cipher.AEAD
	names   []string
}

var keyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Load reads an encryption key file. Errors name the file and the key at
// fault, never a key's bytes.
func Load(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	ks, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	ks.path = path
	return ks, nil
}

// Parse reads an encryption key file's content.
func Parse(b []byte) (*Keys, error) {
	var f File
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, err
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("no keys: want at least one under keys:")
	}
	ks := &Keys{aeads: make(map[string]cipher.AEAD, len(f.Keys))}
	for i, k := range f.Keys {
		if !keyName.MatchString(k.Name) {
			return nil, fmt.Errorf("keys[%d]: name %q: want letters, digits, '.', '_' or '-', at most 63", i, k.Name)
		}
		if _, dup := ks.aeads[k.Name]; dup {
			return nil, fmt.Errorf("keys[%d]: name %q is given twice", i, k.Name)
		}
		raw, err := base64.StdEncoding.DecodeString(k.Secret)
		if err != nil || len(raw) != chacha20poly1305.KeySize {
			return nil, fmt.Errorf("keys[%d] (%s): secret: want %d random bytes in base64 (head -c 32 /dev/urandom | base64)", i, k.Name, chacha20poly1305.KeySize)
		}
		aead, err := chacha20poly1305.NewX(raw)
		if err != nil {
			return nil, fmt.Errorf("keys[%d] (%s): %w", i, k.Name, err)
		}
		ks.aeads[k.Name] = aead
		ks.names = append(ks.names, k.Name)
	}
	ks.primary = f.Keys[0].Name
	return ks, nil
}

// NewKey returns a key named name with fresh random bytes.
func NewKey(name string) Key {
	raw := make([]byte, chacha20poly1305.KeySize)
	_, _ = rand.Read(raw) // crypto/rand.Read does not fail
	return Key{Name: name, Secret: base64.StdEncoding.EncodeToString(raw)}
}

// DefaultKeyName names a key made at t: k-YYYYMMDD-<4 random hex digits>,
// so keys made on two machines on one day differ by name.
func DefaultKeyName(t time.Time) string {
	var r [2]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("k-%s-%x", t.UTC().Format("20060102"), r)
}

// Marshal returns the content of a key file holding keys, the first one
// sealing.
func Marshal(keys ...Key) []byte {
	b, _ := yaml.Marshal(File{Keys: keys}) // strings only: it cannot fail
	return b
}

// Generate writes a new key file at path holding one fresh key, readable by
// its owner only. It fails when path exists.
func Generate(path string) (*Keys, error) {
	b := Marshal(NewKey(DefaultKeyName(time.Now())))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	return Load(path)
}

// Path is the file the keys were loaded from ("" when parsed from bytes).
func (ks *Keys) Path() string { return ks.path }

// Primary is the name of the key values are sealed with.
func (ks *Keys) Primary() string { return ks.primary }

// Names lists the keys' names, the primary first.
func (ks *Keys) Names() []string { return append([]string(nil), ks.names...) }

// Seal encrypts value, stored under the etcd key key, with the primary key.
func (ks *Keys) Seal(key, value []byte) ([]byte, error) {
	aead := ks.aeads[ks.primary]
	head := prefix + ks.primary + ":"
	out := make([]byte, len(head)+aead.NonceSize(), len(head)+aead.NonceSize()+len(value)+aead.Overhead())
	copy(out, head)
	nonce := out[len(head):]
	_, _ = rand.Read(nonce)
	return aead.Seal(out, nonce, value, key), nil
}

// Open returns the value sealed in stored under the etcd key key. A value not
// sealed (no prefix) is returned as it is. stale says the value is not sealed
// with the primary key, so it should be sealed again.
func (ks *Keys) Open(key, stored []byte) (value []byte, stale bool, err error) {
	name, nonce, ct, sealed, err := split(stored)
	if !sealed {
		return stored, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	aead, ok := ks.aeads[name]
	if !ok {
		return nil, false, fmt.Errorf("key %q: %w", name, ErrUnknownKey)
	}
	value, err = aead.Open(nil, nonce, ct, key)
	if err != nil {
		return nil, false, fmt.Errorf("key %q: %w", name, ErrNotOpened)
	}
	return value, name != ks.primary, nil
}

// IsSealed says whether stored is a sealed value.
func IsSealed(stored []byte) bool { return bytes.HasPrefix(stored, []byte(prefix)) }

// KeyName returns the name of the key stored was sealed with; false when it
// is not a sealed value.
func KeyName(stored []byte) (string, bool) {
	name, _, _, sealed, err := split(stored)
	return name, sealed && err == nil
}

func split(stored []byte) (name string, nonce, ct []byte, sealed bool, err error) {
	rest, ok := bytes.CutPrefix(stored, []byte(prefix))
	if !ok {
		return "", nil, nil, false, nil
	}
	n, body, ok := bytes.Cut(rest, []byte(":"))
	if !ok || len(body) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return "", nil, nil, true, errors.New("a sealed value cut short")
	}
	return string(n), body[:chacha20poly1305.NonceSizeX], body[chacha20poly1305.NonceSizeX:], true, nil
}
