package gitsync

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// readKeyRing reads the armored OpenPGP public keys of file; a file without
// any key is an error, since it would refuse every commit.
func readKeyRing(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(string(b)))
	if err != nil {
		return "", fmt.Errorf("not armored OpenPGP public keys: %v", err)
	}
	if len(ring) == 0 {
		return "", errors.New("no keys in it")
	}
	return string(b), nil
}

// verifyCommit checks that c is signed by one of the keys in keysFile. Only
// the commit itself is checked, not its ancestors: the signer vouches for the
// tree the commit names. Errors wrap ErrVerify.
func verifyCommit(c *object.Commit, keysFile string) error {
	id := c.Hash.String()
	if c.PGPSignature == "" {
		return fmt.Errorf("%w: commit %s is not signed; only commits signed by a key in %s are applied", ErrVerify, id, keysFile)
	}
	ring, err := readKeyRing(keysFile)
	if err != nil {
		return fmt.Errorf("%w: commit %s: keys file %s: %v", ErrVerify, id, keysFile, err)
	}
	_, err = c.Verify(ring)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return fmt.Errorf("%w: commit %s is signed by key %s, which is not in %s", ErrVerify, id, signer(c.PGPSignature), keysFile)
	default:
		return fmt.Errorf("%w: commit %s: signature by key %s does not verify: %v", ErrVerify, id, signer(c.PGPSignature), err)
	}
}

// signer names the key that made an armored signature: its fingerprint, or
// its key ID when the signature carries no fingerprint.
func signer(armored string) string {
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return "(not an OpenPGP signature)"
	}
	p, err := packet.Read(block.Body)
	if err != nil {
		return "(unreadable signature)"
	}
	sig, ok := p.(*packet.Signature)
	switch {
	case !ok:
		return "(unreadable signature)"
	case len(sig.IssuerFingerprint) > 0:
		return fmt.Sprintf("%X", sig.IssuerFingerprint)
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	return "(unknown)"
}
