package satoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Errors of Verify. Each error Verify returns wraps exactly one of them.
var (
	// ErrMalformed: the token is not a compact JWS of bound service
	// account token claims, or is longer than 16 KiB.
	ErrMalformed = errors.New("satoken: malformed token")
	// ErrUnknownKey: the token names no key, or one the Verifier does not
	// have. Verifier.Keys returns an error wrapping it for a key it lacks.
	ErrUnknownKey = errors.New("satoken: unknown key")
	// ErrSignature: the token is not signed with ES256, or its signature
	// does not verify with the key it names.
	ErrSignature = errors.New("satoken: bad signature")
	// ErrExpired: the token's expiry has passed.
	ErrExpired = errors.New("satoken: token expired")
	// ErrNotYetValid: the token's not-before or issued-at time is still
	// to come.
	ErrNotYetValid = errors.New("satoken: token not yet valid")
	// ErrAudience: the token is not meant for the audiences accepted.
	ErrAudience = errors.New("satoken: audience not accepted")
	// ErrIssuer: another issuer signed the token.
	ErrIssuer = errors.New("satoken: issuer not accepted")
)

// Verifier checks tokens. Its fields are read only; it is safe for
// concurrent use.
type Verifier struct {
	// Issuer is the issuer ("iss") tokens must name; tokens of another
	// issuer are refused. Required.
	Issuer string
	// Keys finds the public key a token's "kid" header names, and returns
	// an error wrapping ErrUnknownKey when there is none. It is called
	// before the token's signature is checked, so with any kid a client
	// sends. Required.
	Keys func(kid string) (*ecdsa.PublicKey, error)
	// Leeway is the clock skew allowed on the token's exp, nbf and iat;
	// default 0.
	Leeway time.Duration
}

// Verify parses token, checks it, and returns its claims. The checks, in
// order, and the sentinel each failure wraps:
//
//   - shape: a compact JWS of at most 16 KiB whose header is a JSON
//     object without "crit" (ErrMalformed);
//   - algorithm: ES256 only, so "none", HS256 and all else are refused
//     (ErrSignature);
//   - key: the header's "kid", found by Keys (ErrUnknownKey; an error of
//     Keys that does not wrap ErrUnknownKey is wrapped with it, and stays
//     reachable with errors.Is and errors.As);
//   - signature (ErrSignature);
//   - claims: exp present, the "kubernetes.io" claim present, and the
//     subject system:serviceaccount:<namespace>:<name>, of valid names,
//     agreeing with kubernetes.io's namespace and serviceaccount.name
//     (ErrMalformed);
//   - issuer equal to v.Issuer (ErrIssuer);
//   - time: now before exp, and not before nbf or iat, each with v.Leeway
//     of slack (ErrExpired, ErrNotYetValid);
//   - audience: when audiences is not empty, at least one of them in the
//     token's aud (ErrAudience).
//
// Error messages say what is wrong in words fit for a server log, and
// quote at most short, clipped parts of the token, never all of it.
func (v *Verifier) Verify(token string, audiences []string, now time.Time) (*Claims, error) {
	h, err := parseHeader(token)
	if err != nil {
		return nil, refuse(ErrMalformed, "%v", err)
	}
	if h.Alg != string(jose.ES256) {
		return nil, refuse(ErrSignature, "token is signed with algorithm %s: only ES256 is accepted", clip(h.Alg))
	}
	if h.Crit != nil {
		return nil, refuse(ErrMalformed, "token header has critical extensions (crit): none are supported")
	}
	key, err := v.key(h.Kid)
	if err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, refuse(ErrMalformed, "token is not a valid JWS: %v", err)
	}
	if len(jws.Signatures) != 1 || jws.Signatures[0].Protected.KeyID != h.Kid {
		return nil, refuse(ErrMalformed, "token header reads differently to different parsers")
	}
	data, err := jws.Verify(key)
	if err != nil {
		return nil, refuse(ErrSignature, "token signature does not verify with key %s", clip(h.Kid))
	}
	var p payload
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, refuse(ErrMalformed, "token claims: %v", err)
	}
	c, err := p.claims()
	if err != nil {
		return nil, refuse(ErrMalformed, "token claims: %v", err)
	}
	if v.Issuer == "" {
		return nil, refuse(ErrIssuer, "verifier accepts no issuer: Verifier.Issuer is empty")
	}
	if c.Issuer != v.Issuer {
		return nil, refuse(ErrIssuer, "token of %s is issued by %s, want %s", c.Subject(), clip(c.Issuer), clip(v.Issuer))
	}
	if err := checkTime(c, now, max(v.Leeway, 0)); err != nil {
		return nil, err
	}
	if len(audiences) > 0 && !slices.ContainsFunc(c.Audiences, func(a string) bool { return slices.Contains(audiences, a) }) {
		return nil, refuse(ErrAudience, "token of %s is for audiences %s, want one of %s", c.Subject(), clipList(c.Audiences), clipList(audiences))
	}
	return c, nil
}

func (v *Verifier) key(kid string) (*ecdsa.PublicKey, error) {
	if kid == "" {
		return nil, refuse(ErrUnknownKey, "token names no key: its header has no kid")
	}
	if v.Keys == nil {
		return nil, refuse(ErrUnknownKey, "token key %s cannot be looked up: Verifier.Keys is nil", clip(kid))
	}
	pub, err := v.Keys(kid)
	switch {
	case err == ErrUnknownKey:
		return nil, refuse(ErrUnknownKey, "token is signed with key %s, which is not known", clip(kid))
	case errors.Is(err, ErrUnknownKey):
		return nil, &refusal{kind: ErrUnknownKey, msg: fmt.Sprintf("token is signed with key %s, which is not known: %v", clip(kid), err), cause: err}
	case err != nil:
		return nil, &refusal{kind: ErrUnknownKey, msg: fmt.Sprintf("token key %s cannot be looked up: %v", clip(kid), err), cause: err}
	case pub == nil:
		return nil, refuse(ErrUnknownKey, "token is signed with key %s, which is not known", clip(kid))
	case pub.Curve != elliptic.P256():
		return nil, refuse(ErrUnknownKey, "token key %s is not a P-256 key, so cannot verify ES256", clip(kid))
	}
	return pub, nil
}

func checkTime(c *Claims, now time.Time, leeway time.Duration) error {
	slack := ""
	if leeway > 0 {
		slack = fmt.Sprintf(", leeway %s", leeway)
	}
	if !now.Before(c.Expiry.Add(leeway)) {
		return refuse(ErrExpired, "token of %s expired at %s (now %s%s)", c.Subject(), stamp(c.Expiry), nowStamp(now, c.Expiry), slack)
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return refuse(ErrNotYetValid, "token of %s is not valid before %s (now %s%s)", c.Subject(), stamp(c.NotBefore), nowStamp(now, c.NotBefore), slack)
	}
	if !c.IssuedAt.IsZero() && now.Add(leeway).Before(c.IssuedAt) {
		return refuse(ErrNotYetValid, "token of %s is issued in the future, at %s (now %s%s)", c.Subject(), stamp(c.IssuedAt), nowStamp(now, c.IssuedAt), slack)
	}
	return nil
}

// refusal is an error of Verify: one sentence for the log, and the
// sentinel errors.Is finds. It is a type of its own so that the sentence
// reads "satoken: token expired at …" rather than the sentinel's text
// followed by the details.
type refusal struct {
	kind  error
	msg   string
	cause error // of Keys, or nil
}

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func (r *refusal) Error() string { return "satoken: " + r.msg }

func (r *refusal) Unwrap() []error {
	if r.cause == nil {
		return []error{r.kind}
	}
	return []error{r.kind, r.cause}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// nowStamp writes now in full, or only its time of day when it falls on
// the date of the time it is compared with.
func nowStamp(now, other time.Time) string {
	now, other = now.UTC(), other.UTC()
	if now.YearDay() == other.YearDay() && now.Year() == other.Year() {
		return now.Format("15:04:05Z07:00")
	}
	return now.Format(time.RFC3339)
}
