package encryption

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keysOf(t testing.TB, ks ...Key) *Keys {
	t.Helper()
	k, err := Parse(Marshal(ks...))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k1, k2 := NewKey("k1"), NewKey("k2")
	old := keysOf(t, k1)
	rotated := keysOf(t, k2, k1)
	key := []byte("/keelson/registry/secrets/shop/db")
	value := []byte(`{"data":{"password":"aHVudGVyMg=="}}`)

	sealed, err := old.Seal(key, value)
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(sealed) || bytes.Contains(sealed, value) || bytes.Contains(sealed, []byte("aHVudGVyMg")) {
		t.Fatalf("sealed value %q shows the plain one", sealed)
	}
	if name, ok := KeyName(sealed); !ok || name != "k1" {
		t.Fatalf("KeyName = %q %v, want k1", name, ok)
	}
	again, _ := old.Seal(key, value)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}

	got, stale, err := old.Open(key, sealed)
	if err != nil || stale || !bytes.Equal(got, value) {
		t.Fatalf("Open with the key it was sealed with = %q stale=%v %v", got, stale, err)
	}
	got, stale, err = rotated.Open(key, sealed)
	if err != nil || !stale || !bytes.Equal(got, value) {
		t.Fatalf("Open after rotation = %q stale=%v %v, want the value, stale", got, stale, err)
	}
	got, stale, err = rotated.Open(key, value)
	if err != nil || !stale || !bytes.Equal(got, value) {
		t.Fatalf("Open of a plain value = %q stale=%v %v, want it as it is, stale", got, stale, err)
	}

	if _, _, err := keysOf(t, k2).Open(key, sealed); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("Open without its key: %v, want ErrUnknownKey naming k1", err)
	}
	if _, _, err := keysOf(t, NewKey("k1")).Open(key, sealed); !errors.Is(err, ErrNotOpened) {
		t.Errorf("Open with another key named k1: %v, want ErrNotOpened", err)
	}
	if _, _, err := old.Open([]byte("/keelson/registry/secrets/shop/other"), sealed); !errors.Is(err, ErrNotOpened) {
		t.Errorf("Open of a value copied under another etcd key: %v, want ErrNotOpened", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, _, err := old.Open(key, tampered); !errors.Is(err, ErrNotOpened) {
		t.Errorf("Open of a changed value: %v, want ErrNotOpened", err)
	}
	if _, _, err := old.Open(key, sealed[:len(prefix)+5]); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("Open of a cut value: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	good := NewKey("k1").Secret
	for _, tc := range []struct{ file, want string }{
		{"", "no keys"},
		{"keys: []", "no keys"},
		{"keyz: []", `unknown field "keyz"`},
		{"keys:\n- name: a:b\n  secret: " + good, `name "a:b"`},
		{"keys:\n- name: k\n  secret: " + good + "\n- name: k\n  secret: " + good, `"k" is given twice`},
		{"keys:\n- name: k\n  secret: c2hvcnQ=", "keys[0] (k): secret: want 32 random bytes"},
		{"keys:\n- name: k\n  secret: not*base64", "keys[0] (k): secret"},
	} {
		_, err := Parse([]byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.file, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), good) {
			t.Errorf("Parse(%q): the error shows a key: %v", tc.file, err)
		}
	}
}

func TestGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "encryption-keys.yaml")
	ks, err := Generate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.HasPrefix(ks.Primary(), "k-") || ks.Path() != path {
		t.Errorf("generated key %q at %q", ks.Primary(), ks.Path())
	}
	if _, err := Generate(path); err == nil {
		t.Error("Generate over an existing file succeeded: it would lose the key")
	}
	if other, _ := Generate(filepath.Join(t.TempDir(), "k.yaml")); other.Primary() == ks.Primary() {
		t.Errorf("two generated keys share the name %q", ks.Primary())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("keys:\n- name: k1\n  secret: " + NewKey("k1").Secret))
	f.Add([]byte("keys: [{name: x}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := Parse(b)
		if err != nil {
			return
		}
		sealed, err := ks.Seal([]byte("k"), b)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := ks.Open([]byte("k"), sealed); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip: %q %v", got, err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	ks := keysOf(f, NewKey("k1"))
	sealed, _ := ks.Seal([]byte("k"), []byte(`{"a":1}`))
	f.Add(sealed)
	f.Add([]byte(prefix + "k1:"))
	f.Add([]byte(prefix + "k2:" + strings.Repeat("x", 60)))
	f.Fuzz(func(t *testing.T, b []byte) {
		value, stale, err := ks.Open([]byte("k"), b)
		if err == nil && !IsSealed(b) && (!stale || !bytes.Equal(value, b)) {
			t.Fatalf("a plain value came back changed: %q", value)
		}
	})
}
