package satoken

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify checks that Verify never panics, that every refusal wraps
// exactly one sentinel without holding the token, and that what it accepts
// is a JWT with a well-formed subject.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	valid := fx.sign(f, fullClaims())
	parts := strings.Split(valid, ".")
	kid := KeyID(&fx.key.PublicKey)
	for _, seed := range []string{
		valid,
		valid[:len(valid)-1],
		valid + "A",
		parts[0] + "." + parts[1] + ".",
		parts[1] + "." + parts[0] + "." + parts[2],
		parts[0] + "." + b64(`{"sub":"system:serviceaccount:a:b","exp":1e300}`) + "." + parts[2],
		handSigned(f, nil, `{"alg":"none","kid":"`+kid+`"}`, editedPayload(func(p, k map[string]any) {})),
		handSigned(f, fx.key, `{"alg":"ES256","kid":"`+kid+`"}`, `{"aud":"x","exp":1796378400,"sub":"system:serviceaccount:a:b","kubernetes.io":{"namespace":"a","serviceaccount":{"name":"b"}}}`),
		handSigned(f, fx.key, `{"alg":"ES256","kid":"`+kid+`"}`, `null`),
		"e30.e30.",
		"",
		"...",
	} {
		f.Add(seed)
	}
	now := testNow.Add(time.Minute)
	f.Fuzz(func(t *testing.T, token string) {
		looks := LooksLikeJWT(token)
		c, err := fx.verifier.Verify(token, []string{"vault"}, now)
		if err == nil {
			if c == nil || !looks {
				t.Fatalf("Verify accepted %q (LooksLikeJWT %v) with claims %v", token, looks, c)
			}
			if ns, name, ok := splitSubject(c.Subject()); !ok || ns != c.Namespace || name != c.ServiceAccount {
				t.Fatalf("accepted claims with subject %q", c.Subject())
			}
			return
		}
		n := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %q wraps %d sentinels, want 1", err, n)
		}
		if len(token) > 40 && strings.Contains(err.Error(), token) {
			t.Fatalf("error %q holds the whole token", err)
		}
	})
}

// FuzzClaims signs what it is given, so that the claims Verify reads past
// the signature are fuzzed too, which mangling whole tokens rarely reaches.
func FuzzClaims(f *testing.F) {
	fx := newFixture(f)
	header := `{"alg":"ES256","kid":"` + KeyID(&fx.key.PublicKey) + `"}`
	f.Add(editedPayload(func(p, k map[string]any) {}))
	f.Add(editedPayload(func(p, k map[string]any) { p["aud"] = "vault"; p["exp"] = 1.5e9 }))
	f.Add(editedPayload(func(p, k map[string]any) { k["pod"] = nil; k["warnafter"] = -1 }))
	f.Add(`{"exp":1796378400,"sub":"system:serviceaccount:a:b","kubernetes.io":{"namespace":"a","serviceaccount":{"name":"b"}}}`)
	f.Add(`[]`)
	now := testNow.Add(time.Minute)
	f.Fuzz(func(t *testing.T, payload string) {
		token := handSigned(t, fx.key, header, payload)
		c, err := fx.verifier.Verify(token, nil, now)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q wraps %d sentinels, want 1", err, n)
			}
			return
		}
		if c.Issuer != testIssuer || !now.Before(c.Expiry) || c.Namespace == "" || c.ServiceAccount == "" {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	token := f.sign(b, fullClaims())
	now := testNow.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verifier.Verify(token, []string{"vault"}, now); err != nil {
			b.Fatal(err)
		}
	}
}
