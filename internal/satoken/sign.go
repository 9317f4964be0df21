package satoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

// Signer signs tokens with one key as one issuer. It is safe for
// concurrent use.
type Signer struct {
	issuer string
	signer jose.Signer
	// err is why the key cannot sign, returned by every Sign, so that
	// NewSigner needs no error of its own.
	err error
}

// NewSigner returns a Signer that signs with key, an ECDSA P-256 key, and
// writes issuer into every token's "iss". A key that cannot sign ES256
// makes every Sign fail, saying why.
func NewSigner(key *ecdsa.PrivateKey, issuer string) *Signer {
	s := &Signer{issuer: issuer}
	if key == nil {
		s.err = errors.New("sign service account token: signer has no key")
		return s
	}
	if key.Curve != elliptic.P256() {
		curve := "unknown"
		if key.Curve != nil {
			curve = key.Curve.Params().Name
		}
		s.err = fmt.Errorf("sign service account token: signer's key is on curve %s, but ES256 needs P-256", curve)
		return s
	}
	kid := KeyID(&key.PublicKey)
	if kid == "" {
		s.err = errors.New("sign service account token: signer's key is not a valid ECDSA public key")
		return s
	}
	// A JSONWebKey with an id makes go-jose write it as "kid" beside
	// "alg", the only two header fields Kubernetes writes.
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       jose.JSONWebKey{Key: key, KeyID: kid},
	}, nil)
	if err != nil {
		s.err = fmt.Errorf("sign service account token: key cannot sign ES256: %w", err)
		return s
	}
	s.signer = signer
	return s
}

// Sign returns c as a compact JWS, signed. It fills in the issuer, and ID
// with a random UUID when empty; c is a copy, so a caller that records the
// token's ID (for audit) sets one first. Sign refuses claims that Verify
// would refuse whatever the time: without a valid namespace and
// ServiceAccount name, without Expiry, with an Issuer other than the
// Signer's, or with an Expiry not after NotBefore.
func (s *Signer) Sign(c Claims) (string, error) {
	if s.err != nil {
		return "", s.err
	}
	if c.Issuer != "" && c.Issuer != s.issuer {
		return "", fmt.Errorf("sign service account token: claims name issuer %s, but the signer issues as %s", clip(c.Issuer), clip(s.issuer))
	}
	c.Issuer = s.issuer
	if err := c.checkNames(); err != nil {
		return "", fmt.Errorf("sign service account token: %w", err)
	}
	if c.Expiry.IsZero() {
		return "", fmt.Errorf("sign service account token for %s: no expiry", c.Subject())
	}
	if !c.NotBefore.IsZero() && c.Expiry.Unix() <= c.NotBefore.Unix() {
		return "", fmt.Errorf("sign service account token for %s: expiry %s is not after not-before %s",
			c.Subject(), stamp(c.Expiry), stamp(c.NotBefore))
	}
	if c.ID == "" {
		id, err := uuid.NewRandom()
		if err != nil {
			return "", fmt.Errorf("sign service account token for %s: make jti: %w", c.Subject(), err)
		}
		c.ID = id.String()
	}
	data, err := json.Marshal(toPayload(&c))
	if err != nil {
		return "", fmt.Errorf("sign service account token for %s: %w", c.Subject(), err)
	}
	token, err := s.sign(data)
	if err != nil {
		return "", fmt.Errorf("sign service account token for %s: %w", c.Subject(), err)
	}
	return token, nil
}

// sign signs any payload; tests use it to make tokens Sign would refuse.
func (s *Signer) sign(data []byte) (string, error) {
	if s.err != nil {
		return "", s.err
	}
	jws, err := s.signer.Sign(data)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
