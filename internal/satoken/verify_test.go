package satoken

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var sentinels = []error{ErrMalformed, ErrUnknownKey, ErrSignature, ErrExpired, ErrNotYetValid, ErrAudience, ErrIssuer}

// checkRefusal fails unless err wraps exactly want among the sentinels and
// does not hold the whole token.
func checkRefusal(t testing.TB, err error, want error, token string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify accepted the token, want %v", want)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) != (s == want) {
			t.Errorf("errors.Is(%q, %v) = %v", err, s, !(s == want))
		}
	}
	if len(token) > 40 && strings.Contains(err.Error(), token) {
		t.Errorf("error %q holds the whole token", err)
	}
}

// validPayload returns fullClaims' JSON as a map, to edit into tokens Sign
// would not make.
func validPayload() map[string]any {
	c := fullClaims()
	return map[string]any{
		"aud": c.Audiences, "iss": c.Issuer, "jti": c.ID, "sub": c.Subject(),
		"iat": c.IssuedAt.Unix(), "nbf": c.NotBefore.Unix(), "exp": c.Expiry.Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      c.Namespace,
			"serviceaccount": map[string]any{"name": c.ServiceAccount, "uid": c.ServiceAccountUID},
			"pod":            map[string]any{"name": c.Pod, "uid": c.PodUID},
		},
	}
}

func editedPayload(edit func(p, k map[string]any)) string {
	p := validPayload()
	edit(p, p["kubernetes.io"].(map[string]any))
	b, _ := json.Marshal(p)
	return string(b)
}

func TestVerifyRefuses(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 4, h, m, 0, 0, time.UTC) }
	withClaims := func(edit func(*Claims)) func(*testing.T, *fixture) string {
		return func(t *testing.T, f *fixture) string {
			c := fullClaims()
			edit(&c)
			return f.sign(t, c)
		}
	}
	withPayload := func(edit func(p, k map[string]any)) func(*testing.T, *fixture) string {
		return func(t *testing.T, f *fixture) string {
			return handSigned(t, f.key, `{"alg":"ES256","kid":"`+KeyID(&f.key.PublicKey)+`"}`, editedPayload(edit))
		}
	}
	withHeader := func(header string) func(*testing.T, *fixture) string {
		return func(t *testing.T, f *fixture) string {
			header = strings.ReplaceAll(header, "KID", KeyID(&f.key.PublicKey))
			return handSigned(t, f.key, header, editedPayload(func(p, k map[string]any) {}))
		}
	}
	valid := withClaims(func(*Claims) {})
	for _, tc := range []struct {
		name      string
		token     func(*testing.T, *fixture) string
		verifier  func(*Verifier)
		audiences []string
		now       time.Time
		want      error
		msg       string
	}{
		{
			name:  "expired",
			token: withClaims(func(c *Claims) { c.Expiry = at(10, 0) }),
			now:   at(10, 5), want: ErrExpired,
			msg: "satoken: token of system:serviceaccount:shop:web expired at 2026-12-04T10:00:00Z (now 10:05:00Z)",
		},
		{
			name:  "expiring this second",
			token: withClaims(func(c *Claims) { c.Expiry = at(10, 0) }),
			now:   at(10, 0), want: ErrExpired, msg: "expired at",
		},
		{
			name:     "expired beyond leeway",
			token:    withClaims(func(c *Claims) { c.Expiry = at(10, 0) }),
			verifier: func(v *Verifier) { v.Leeway = time.Minute },
			now:      at(10, 1), want: ErrExpired, msg: "(now 10:01:00Z, leeway 1m0s)",
		},
		{
			name:  "expired days ago",
			token: withClaims(func(c *Claims) { c.Expiry = at(10, 0) }),
			now:   at(10, 0).AddDate(0, 0, 3), want: ErrExpired, msg: "(now 2026-12-07T10:00:00Z)",
		},
		{
			name:  "not yet valid",
			token: valid,
			now:   testNow.Add(-time.Second), want: ErrNotYetValid, msg: "not valid before 2026-12-04T09:00:00Z (now 08:59:59Z)",
		},
		{
			name:  "issued in the future",
			token: withClaims(func(c *Claims) { c.NotBefore = time.Time{} }),
			now:   testNow.Add(-time.Minute), want: ErrNotYetValid, msg: "issued in the future, at 2026-12-04T09:00:00Z",
		},
		{
			name:      "wrong audience",
			token:     valid,
			audiences: []string{"https://other"},
			want:      ErrAudience, msg: `is for audiences ["https://keelson.default.svc" "vault"], want one of ["https://other"]`,
		},
		{
			name:      "no audience",
			token:     withClaims(func(c *Claims) { c.Audiences = nil }),
			audiences: []string{testIssuer},
			want:      ErrAudience, msg: "is for audiences []",
		},
		{
			name: "wrong issuer",
			token: func(t *testing.T, f *fixture) string {
				c := fullClaims()
				c.Issuer = ""
				token, err := NewSigner(f.key, "https://elsewhere").Sign(c)
				if err != nil {
					t.Fatal(err)
				}
				return token
			},
			want: ErrIssuer, msg: `is issued by "https://elsewhere", want "https://keelson.default.svc"`,
		},
		{
			name:     "verifier without issuer",
			token:    valid,
			verifier: func(v *Verifier) { v.Issuer = "" },
			want:     ErrIssuer, msg: "Verifier.Issuer is empty",
		},
		{
			name: "unknown kid",
			token: func(t *testing.T, f *fixture) string {
				return newFixture(t).sign(t, fullClaims())
			},
			want: ErrUnknownKey, msg: "which is not known: no key",
		},
		{
			name:  "no kid",
			token: withHeader(`{"alg":"ES256"}`),
			want:  ErrUnknownKey, msg: "token names no key",
		},
		{
			name:     "key lookup fails",
			token:    valid,
			verifier: func(v *Verifier) { v.Keys = func(string) (*ecdsa.PublicKey, error) { return nil, errStoreDown } },
			want:     ErrUnknownKey, msg: "cannot be looked up: store down",
		},
		{
			name:     "no Keys",
			token:    valid,
			verifier: func(v *Verifier) { v.Keys = nil },
			want:     ErrUnknownKey, msg: "Verifier.Keys is nil",
		},
		{
			name: "another key under the same kid",
			token: func(t *testing.T, f *fixture) string {
				return handSigned(t, newKey(t), `{"alg":"ES256","kid":"`+KeyID(&f.key.PublicKey)+`"}`, editedPayload(func(p, k map[string]any) {}))
			},
			want: ErrSignature, msg: "signature does not verify with key",
		},
		{
			name: "alg none",
			token: func(t *testing.T, f *fixture) string {
				return handSigned(t, nil, `{"alg":"none","kid":"`+KeyID(&f.key.PublicKey)+`"}`, editedPayload(func(p, k map[string]any) {}))
			},
			want: ErrSignature, msg: `signed with algorithm "none": only ES256 is accepted`,
		},
		{
			name: "HS256 keyed with the public key",
			token: func(t *testing.T, f *fixture) string {
				secret, err := MarshalPublicKey(&f.key.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				input := b64(`{"alg":"HS256","kid":"`+KeyID(&f.key.PublicKey)+`"}`) + "." + b64(editedPayload(func(p, k map[string]any) {}))
				mac := hmac.New(sha256.New, secret)
				mac.Write([]byte(input))
				return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
			},
			want: ErrSignature, msg: `algorithm "HS256"`,
		},
		{
			name:  "ES384",
			token: withHeader(`{"alg":"ES384","kid":"KID"}`),
			want:  ErrSignature, msg: `algorithm "ES384"`,
		},
		{
			name: "tampered payload",
			token: func(t *testing.T, f *fixture) string {
				parts := strings.Split(f.sign(t, fullClaims()), ".")
				parts[1] = b64(editedPayload(func(p, k map[string]any) {
					p["sub"] = "system:serviceaccount:kube-system:admin"
					k["namespace"] = "kube-system"
					k["serviceaccount"] = map[string]any{"name": "admin"}
				}))
				return strings.Join(parts, ".")
			},
			want: ErrSignature, msg: "signature does not verify",
		},
		{
			name: "truncated signature",
			token: func(t *testing.T, f *fixture) string {
				token := f.sign(t, fullClaims())
				return token[:len(token)-4]
			},
			want: ErrSignature, msg: "signature does not verify",
		},
		{
			name:  "subject disagrees with kubernetes.io",
			token: withPayload(func(p, k map[string]any) { p["sub"] = "system:serviceaccount:kube-system:web" }),
			want:  ErrMalformed, msg: `subject "system:serviceaccount:kube-system:web" disagrees with kubernetes.io: namespace "shop", serviceaccount "web"`,
		},
		{
			name:  "subject of too many parts",
			token: withPayload(func(p, k map[string]any) { p["sub"] = "system:serviceaccount:shop:web:x" }),
			want:  ErrMalformed, msg: "is not of the form system:serviceaccount:<namespace>:<name>",
		},
		{
			name:  "user subject",
			token: withPayload(func(p, k map[string]any) { p["sub"] = "admin" }),
			want:  ErrMalformed, msg: "is not of the form",
		},
		{
			name: "invalid namespace name",
			token: withPayload(func(p, k map[string]any) {
				p["sub"] = "system:serviceaccount:Shop_1:web"
				k["namespace"] = "Shop_1"
			}),
			want: ErrMalformed, msg: `namespace "Shop_1" is not a valid name`,
		},
		{
			name:  "no expiry",
			token: withPayload(func(p, k map[string]any) { delete(p, "exp") }),
			want:  ErrMalformed, msg: "no expiry (exp)",
		},
		{
			name:  "expiry as a string",
			token: withPayload(func(p, k map[string]any) { p["exp"] = "1796378400" }),
			want:  ErrMalformed, msg: "token claims: a time (exp, iat, nbf or warnafter) is not a number of seconds",
		},
		{
			name:  "no kubernetes.io",
			token: withPayload(func(p, k map[string]any) { delete(p, "kubernetes.io") }),
			want:  ErrMalformed, msg: `no "kubernetes.io" claim`,
		},
		{
			name:  "critical header",
			token: withHeader(`{"alg":"ES256","kid":"KID","crit":["b64"],"b64":false}`),
			want:  ErrMalformed, msg: "critical extensions",
		},
		{
			name: "oversized",
			token: func(t *testing.T, f *fixture) string {
				c := fullClaims()
				c.Audiences = append(c.Audiences, strings.Repeat("a", 16<<10))
				return f.sign(t, c)
			},
			want: ErrMalformed, msg: "more than the 16384 accepted",
		},
		{name: "empty", token: func(*testing.T, *fixture) string { return "" }, want: ErrMalformed, msg: "token has no dots"},
		{name: "static token", token: func(*testing.T, *fixture) string { return "6f1d0c2b9a8e7d6c5b4a39281706f5e4" }, want: ErrMalformed, msg: "header.payload.signature"},
		{
			name: "four parts",
			token: func(t *testing.T, f *fixture) string {
				return f.sign(t, fullClaims()) + ".e30"
			},
			want: ErrMalformed, msg: "4 dot-separated parts",
		},
		{name: "header not JSON", token: func(*testing.T, *fixture) string { return b64("alg") + ".e30.AA" }, want: ErrMalformed, msg: "header is not a JSON object"},
		{name: "padded base64", token: func(*testing.T, *fixture) string { return "e30=.e30.AA" }, want: ErrMalformed, msg: "not unpadded base64url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.verifier != nil {
				tc.verifier(f.verifier)
			}
			now := tc.now
			if now.IsZero() {
				now = testNow.Add(time.Minute)
			}
			token := tc.token(t, f)
			claims, err := f.verifier.Verify(token, tc.audiences, now)
			if claims != nil {
				t.Errorf("Verify returned claims %+v with its error", claims)
			}
			checkRefusal(t, err, tc.want, token)
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

var errStoreDown = errors.New("store down")

func TestVerifyKeepsKeysError(t *testing.T) {
	f := newFixture(t)
	f.verifier.Keys = func(string) (*ecdsa.PublicKey, error) { return nil, errStoreDown }
	_, err := f.verifier.Verify(f.sign(t, fullClaims()), nil, testNow)
	if !errors.Is(err, ErrUnknownKey) || !errors.Is(err, errStoreDown) {
		t.Errorf("Verify = %v, want an error wrapping both ErrUnknownKey and the Keys error", err)
	}
}

func TestVerifyAccepts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		edit      func(p, k map[string]any)
		leeway    time.Duration
		audiences []string
		now       time.Time
	}{
		{name: "any audience when none asked", edit: func(p, k map[string]any) {}},
		{name: "one of the audiences", edit: func(p, k map[string]any) {}, audiences: []string{"x", "vault"}},
		{name: "aud as a single string", edit: func(p, k map[string]any) { p["aud"] = "vault" }, audiences: []string{"vault"}},
		{name: "fractional times", edit: func(p, k map[string]any) { p["exp"] = float64(testNow.Unix()) + 3600.5 }},
		{name: "unknown claims", edit: func(p, k map[string]any) { p["x"] = []int{1}; k["secret"] = map[string]any{"name": "s"} }},
		{name: "no iat or nbf", edit: func(p, k map[string]any) { delete(p, "iat"); delete(p, "nbf") }, now: testNow.Add(-time.Hour)},
		{name: "at not-before", edit: func(p, k map[string]any) {}, now: testNow},
		{name: "early within leeway", edit: func(p, k map[string]any) {}, leeway: time.Minute, now: testNow.Add(-59 * time.Second)},
		{name: "late within leeway", edit: func(p, k map[string]any) {}, leeway: time.Minute, now: testNow.Add(time.Hour + 59*time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.verifier.Leeway = tc.leeway
			now := tc.now
			if now.IsZero() {
				now = testNow.Add(time.Minute)
			}
			token := handSigned(t, f.key, `{"alg":"ES256","kid":"`+KeyID(&f.key.PublicKey)+`"}`, editedPayload(tc.edit))
			c, err := f.verifier.Verify(token, tc.audiences, now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject() != "system:serviceaccount:shop:web" {
				t.Errorf("Subject() = %q", c.Subject())
			}
		})
	}
}

func TestLooksLikeJWT(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name  string
		token string
		want  bool
	}{
		{"signed token", f.sign(t, fullClaims()), true},
		{"alg none", handSigned(t, nil, `{"alg":"none"}`, `{}`), true},
		{"empty object header", "e30.e30.AA", true},
		{"empty", "", false},
		{"static token", "6f1d0c2b9a8e7d6c5b4a39281706f5e4", false},
		{"two parts", "e30.e30", false},
		{"empty payload", "e30..AA", false},
		{"header a string", b64(`"x"`) + ".e30.AA", false},
		{"header null", b64(`null`) + ".e30.AA", false},
		{"header not base64", "e30!.e30.AA", false},
		{"space in signature", "e30.e30.A A", false},
		{"oversized", "e30.e30." + strings.Repeat("A", 16<<10), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LooksLikeJWT(tc.token); got != tc.want {
				t.Errorf("LooksLikeJWT = %v, want %v", got, tc.want)
			}
		})
	}
}
