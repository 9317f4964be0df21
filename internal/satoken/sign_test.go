package satoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testIssuer = "https://keelson.default.svc"

var testNow = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

// fixture is a key, a Signer with it and a Verifier that knows it.
type fixture struct {
	key      *ecdsa.PrivateKey
	signer   *Signer
	verifier *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	key := newKey(t)
	kid := KeyID(&key.PublicKey)
	return &fixture{
		key:    key,
		signer: NewSigner(key, testIssuer),
		verifier: &Verifier{
			Issuer: testIssuer,
			Keys: func(k string) (*ecdsa.PublicKey, error) {
				if k != kid {
					return nil, fmt.Errorf("no key %q among the published keys: %w", k, ErrUnknownKey)
				}
				return &key.PublicKey, nil
			},
		},
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// fullClaims are claims with every field set, valid at testNow.
func fullClaims() Claims {
	return Claims{
		Issuer:            testIssuer,
		Audiences:         []string{testIssuer, "vault"},
		Namespace:         "shop",
		ServiceAccount:    "web",
		ServiceAccountUID: "0b7c1a9e-5d3e-4c1e-9a57-3f2d8c1e0a11",
		Pod:               "web-7d9c",
		PodUID:            "6a0f4d2c-8e1b-4f7a-b3c5-2d9e8f1a0b22",
		Node:              "node-1",
		NodeUID:           "c3e5a7b9-1d2f-4a6b-8c0d-e1f2a3b4c533",
		IssuedAt:          testNow,
		NotBefore:         testNow,
		Expiry:            testNow.Add(time.Hour),
		ID:                "5f0c7e2a-3b4d-4e6f-8a9b-0c1d2e3f4a44",
		WarnAfter:         testNow.Add(30 * time.Minute),
	}
}

func (f *fixture) sign(t testing.TB, c Claims) string {
	t.Helper()
	token, err := f.signer.Sign(c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return token
}

// handSigned builds a token from raw header and payload JSON, signed with
// ES256 by key, or with an empty signature when key is nil.
func handSigned(t testing.TB, key *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	input := b64(header) + "." + b64(payload)
	if key == nil {
		return input + "."
	}
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// decodePart decodes part i of a token as JSON.
func decodePart(t testing.TB, token string, i int) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSignVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	want := fullClaims()
	token := f.sign(t, want)

	got, err := f.verifier.Verify(token, []string{"vault"}, testNow.Add(time.Minute))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Verify returned\n%+v\nwant\n%+v", *got, want)
	}
	if got.Subject() != "system:serviceaccount:shop:web" {
		t.Errorf("Subject() = %q", got.Subject())
	}
}

func TestSignFillsIDAndIssuer(t *testing.T) {
	f := newFixture(t)
	c := fullClaims()
	c.ID, c.Issuer = "", ""
	c.IssuedAt = testNow.Add(123 * time.Millisecond)

	first, err := f.verifier.Verify(f.sign(t, c), nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.verifier.Verify(f.sign(t, c), nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(first.ID) || first.ID == second.ID {
		t.Errorf("IDs %q and %q: want two different random UUIDs", first.ID, second.ID)
	}
	if first.Issuer != testIssuer {
		t.Errorf("Issuer = %q, want the signer's %q", first.Issuer, testIssuer)
	}
	if !first.IssuedAt.Equal(testNow) {
		t.Errorf("IssuedAt = %s, want whole seconds %s", first.IssuedAt, testNow)
	}
}

// TestSignJSON checks the token's JSON against Kubernetes': the header, the
// claim names, aud an array even of one, and the keys in Kubernetes' order.
func TestSignJSON(t *testing.T) {
	f := newFixture(t)
	c := fullClaims()
	c.Audiences = []string{testIssuer}
	token := f.sign(t, c)

	header := decodePart(t, token, 0)
	if want := (map[string]any{"alg": "ES256", "kid": KeyID(&f.key.PublicKey)}); !reflect.DeepEqual(header, want) {
		t.Errorf("header = %v, want %v", header, want)
	}

	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	want := `{"aud":["https://keelson.default.svc"],"exp":1796378400,"iat":1796374800,"iss":"https://keelson.default.svc",` +
		`"jti":"5f0c7e2a-3b4d-4e6f-8a9b-0c1d2e3f4a44","kubernetes.io":{"namespace":"shop",` +
		`"node":{"name":"node-1","uid":"c3e5a7b9-1d2f-4a6b-8c0d-e1f2a3b4c533"},` +
		`"pod":{"name":"web-7d9c","uid":"6a0f4d2c-8e1b-4f7a-b3c5-2d9e8f1a0b22"},` +
		`"serviceaccount":{"name":"web","uid":"0b7c1a9e-5d3e-4c1e-9a57-3f2d8c1e0a11"},"warnafter":1796376600},` +
		`"nbf":1796374800,"sub":"system:serviceaccount:shop:web"}`
	if string(raw) != want {
		t.Errorf("payload\n%s\nwant\n%s", raw, want)
	}

	m := decodePart(t, token, 1)
	for _, tc := range []struct {
		path []string
		want any
	}{
		{[]string{"sub"}, "system:serviceaccount:shop:web"},
		{[]string{"aud"}, []any{testIssuer}},
		{[]string{"iss"}, testIssuer},
		{[]string{"iat"}, float64(c.IssuedAt.Unix())},
		{[]string{"nbf"}, float64(c.NotBefore.Unix())},
		{[]string{"exp"}, float64(c.Expiry.Unix())},
		{[]string{"jti"}, c.ID},
		{[]string{"kubernetes.io", "namespace"}, "shop"},
		{[]string{"kubernetes.io", "pod", "name"}, c.Pod},
		{[]string{"kubernetes.io", "pod", "uid"}, c.PodUID},
		{[]string{"kubernetes.io", "serviceaccount", "name"}, c.ServiceAccount},
		{[]string{"kubernetes.io", "serviceaccount", "uid"}, c.ServiceAccountUID},
		{[]string{"kubernetes.io", "node", "name"}, c.Node},
		{[]string{"kubernetes.io", "node", "uid"}, c.NodeUID},
		{[]string{"kubernetes.io", "warnafter"}, float64(c.WarnAfter.Unix())},
	} {
		if got := claim(m, tc.path...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %#v, want %#v", strings.Join(tc.path, "."), got, tc.want)
		}
	}
}

// claim looks up a nested claim, nil when absent.
func claim(m map[string]any, path ...string) any {
	var v any = m
	for _, name := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[name]
	}
	return v
}

// TestSignUnbound checks that objects a token is not bound to are left
// out, and that "serviceaccount" is written even so, as Kubernetes does.
func TestSignUnbound(t *testing.T) {
	f := newFixture(t)
	c := Claims{Namespace: "shop", ServiceAccount: "web", Expiry: testNow.Add(time.Hour), ID: "x"}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(f.sign(t, c), ".")[1])
	want := `{"exp":1796378400,"iss":"https://keelson.default.svc","jti":"x",` +
		`"kubernetes.io":{"namespace":"shop","serviceaccount":{"name":"web"}},"sub":"system:serviceaccount:shop:web"}`
	if string(raw) != want {
		t.Errorf("payload\n%s\nwant\n%s", raw, want)
	}
	got, err := f.verifier.Verify(f.sign(t, c), nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pod != "" || got.Node != "" || !got.WarnAfter.IsZero() || len(got.Audiences) != 0 {
		t.Errorf("unbound token read back as %+v", got)
	}
}

func TestSignRefuses(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	valid := Claims{Namespace: "shop", ServiceAccount: "web", Expiry: testNow.Add(time.Hour)}
	for _, tc := range []struct {
		name   string
		signer *Signer
		edit   func(*Claims)
		want   string
	}{
		{"no namespace", nil, func(c *Claims) { c.Namespace = "" }, "namespace"},
		{"bad namespace", nil, func(c *Claims) { c.Namespace = "Shop_1" }, "namespace \"Shop_1\" is not a valid name"},
		{"colon in name", nil, func(c *Claims) { c.ServiceAccount = "a:b" }, "service account name \"a:b\""},
		{"no expiry", nil, func(c *Claims) { c.Expiry = time.Time{} }, "no expiry"},
		{"expiry before not-before", nil, func(c *Claims) { c.NotBefore = c.Expiry }, "is not after not-before"},
		{"other issuer", nil, func(c *Claims) { c.Issuer = "https://elsewhere" }, "the signer issues as"},
		{"nil key", NewSigner(nil, testIssuer), func(*Claims) {}, "no key"},
		{"P-384 key", NewSigner(p384, testIssuer), func(*Claims) {}, "ES256 needs P-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.signer
			if s == nil {
				s = NewSigner(newKey(t), testIssuer)
			}
			c := valid
			tc.edit(&c)
			token, err := s.Sign(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Sign = %q, %v; want an error saying %q", token, err, tc.want)
			}
		})
	}
}

func TestKeyIDMatchesOpenSSL(t *testing.T) {
	// The key id of this key as computed by
	// openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | basenc --base64url
	const pub = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqCiWeFIPVqyHURrBfBMOwDN6UBdw
jbvrF/k+8U2YCm5hnqiEEPMwXeIj3aaq6xeQNGtXeZ9GVyrbD/fCUJXHhg==
-----END PUBLIC KEY-----
`
	key, err := ParsePublicKey([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := KeyID(key), "i-OAj-lg1qokrn38XEPM3f1zgWhelUKDzzBp0x5mq6w"; got != want {
		t.Errorf("KeyID = %q, want %q", got, want)
	}
	if got := KeyID(nil); got != "" {
		t.Errorf("KeyID(nil) = %q, want empty", got)
	}
	if got := KeyID(&ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}); got != "" {
		t.Errorf("KeyID of a point off the curve = %q, want empty", got)
	}
}
