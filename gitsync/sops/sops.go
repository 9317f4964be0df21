package sops

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"filippo.io/age"
	sopsv3 "github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/logging"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
)

// Errors of Decrypt, wrapped with the file's name.
var (
	// ErrNoKey: no key the server holds opens the file.
	ErrNoKey = errors.New("no decryption key opens it")
	// ErrTampered: the file's values do not match its MAC, or one fails
	// its own authentication: changed without the key.
	ErrTampered = errors.New("its values do not match their MAC: changed without the key")
	// ErrNotEncrypted: the file holds no sops metadata.
	ErrNotEncrypted = errors.New("it is not encrypted with sops")
)

// EncryptedRegex is what `keelson secret encrypt` encrypts in a Secret,
// as sops --encrypted-regex '^(data|stringData)$': the values, leaving
// the kind, names and labels readable for review.
const EncryptedRegex = "^(data|stringData)$"

func init() {
	// sops logs at Warn through logrus by default; its lines would carry
	// nothing keelson's own errors do not.
	logging.SetLevel(0)
}

// Keys are the age identities a server decrypts with.
type Keys struct {
	ids        sopsage.ParsedIdentities
	recipients []string
}

// LoadKeyFiles reads age identity files (AGE-SECRET-KEY-1… lines, as
// age-keygen writes them; # comments and empty lines are skipped). Several
// files, or several keys in one, let a cluster decrypt files encrypted for
// any of them: a key is rotated by adding the new one, re-encrypting, then
// dropping the old. Errors name the file, never a key.
func LoadKeyFiles(files ...string) (*Keys, error) {
	k := &Keys{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("decryption key file: %w", err)
		}
		ids, err := age.ParseIdentities(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("decryption key file %s: %v", f, scrub(err))
		}
		for _, id := range ids {
			x, ok := id.(*age.X25519Identity)
			if !ok {
				return nil, fmt.Errorf("decryption key file %s: only age X25519 keys (AGE-SECRET-KEY-1…) are supported", f)
			}
			k.ids = append(k.ids, x)
			k.recipients = append(k.recipients, x.Recipient().String())
		}
	}
	if len(k.ids) == 0 {
		return nil, errors.New("decryption key files: no age key in them")
	}
	return k, nil
}

// scrub keeps a parse error from repeating the line it failed on, which
// may be a key.
func scrub(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "AGE-SECRET-KEY"); i >= 0 {
		msg = msg[:i] + "(a key, not shown)"
	}
	return msg
}

// Recipients are the public keys of the identities, age1…: what files
// for this cluster are encrypted to.
func (k *Keys) Recipients() []string { return append([]string(nil), k.recipients...) }

// storeFor returns the sops store of a file: JSON for .json, YAML else.
func storeFor(name string) sopsv3.Store {
	if path.Ext(name) == ".json" {
		return sopsjson.NewStore(&config.JSONStoreConfig{})
	}
	return sopsyaml.NewStore(&config.YAMLStoreConfig{})
}

// load reads the sops document data, the file name, with its store.
// Errors: ErrNotEncrypted, or the metadata's problem.
func load(name string, data []byte) (sopsv3.Store, sopsv3.Tree, error) {
	st := storeFor(name)
	tree, err := st.LoadEncryptedFile(data)
	if err != nil {
		if errors.Is(err, sopsv3.MetadataNotFound) {
			return nil, tree, fmt.Errorf("%s: %w", name, ErrNotEncrypted)
		}
		return nil, tree, fmt.Errorf("%s: sops metadata: %v", name, err)
	}
	return st, tree, nil
}

// IsEncrypted reports whether data, the content of file name, is a sops
// document: one with sops metadata at the top level.
func IsEncrypted(name string, data []byte) bool {
	if !bytes.Contains(data, []byte("sops")) || !bytes.Contains(data, []byte("mac")) {
		return false // the common case, without parsing
	}
	_, err := storeFor(name).LoadEncryptedFile(data)
	return err == nil
}

// Decrypt returns the plain content of the sops document data, the file
// name. Errors: ErrNotEncrypted, ErrNoKey, ErrTampered, or the file's own
// problems, each naming the file and never a value.
func (k *Keys) Decrypt(name string, data []byte) (plain []byte, err error) {
	defer func() {
		// sops' tree walk panics on shapes it does not expect; a bad file
		// must not take the server down.
		if r := recover(); r != nil {
			plain, err = nil, fmt.Errorf("%s: cannot decrypt: malformed sops document", name)
		}
	}()
	st, tree, err := load(name, data)
	if err != nil {
		return nil, err
	}
	svc := ageService{ids: k.ids}
	key, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{keyservice.NewCustomLocalClient(svc)}, []string{"age"})
	if err != nil {
		return nil, fmt.Errorf("%s: %w (it is encrypted for %s)", name, ErrNoKey, strings.Join(recipientsOf(tree.Metadata), ", "))
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		// A value that fails AES-GCM's own tag was changed or moved; the
		// message of a value not in sops' format would hold the value.
		return nil, fmt.Errorf("%s: %w", name, ErrTampered)
	}
	want, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || want != mac {
		return nil, fmt.Errorf("%s: %w", name, ErrTampered)
	}
	out, err := st.EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, fmt.Errorf("%s: write the decrypted document: %v", name, err)
	}
	return out, nil
}

// recipientsOf lists the age recipients a file is encrypted for, and says
// how many keys of other kinds it has.
func recipientsOf(m sopsv3.Metadata) []string {
	var out []string
	other := 0
	for _, g := range m.KeyGroups {
		for _, mk := range g {
			if a, ok := mk.(*sopsage.MasterKey); ok {
				out = append(out, a.Recipient)
			} else {
				other++
			}
		}
	}
	if other > 0 {
		out = append(out, fmt.Sprintf("%d key(s) of other kinds (KMS, PGP, Vault), which keelson does not use", other))
	}
	if len(out) == 0 {
		return []string{"no key"}
	}
	return out
}

// ageService is a sops key service that opens data keys with the
// server's age identities only: sops' own reads keys from the
// environment and the user's home, and would ask cloud KMSes.
type ageService struct {
	ids sopsage.ParsedIdentities
}

var errNotAge = errors.New("only age keys are used")

func (s ageService) Decrypt(_ context.Context, r *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
	ak := r.GetKey().GetAgeKey()
	if ak == nil || len(s.ids) == 0 {
		return nil, errNotAge
	}
	mk := sopsage.MasterKey{Recipient: ak.GetRecipient(), EncryptedKey: string(r.GetCiphertext())}
	s.ids.ApplyToMasterKey(&mk)
	plain, err := mk.Decrypt()
	if err != nil {
		return nil, err
	}
	return &keyservice.DecryptResponse{Plaintext: plain}, nil
}

func (s ageService) Encrypt(_ context.Context, r *keyservice.EncryptRequest) (*keyservice.EncryptResponse, error) {
	ak := r.GetKey().GetAgeKey()
	if ak == nil {
		return nil, errNotAge
	}
	mk := sopsage.MasterKey{Recipient: ak.GetRecipient()}
	if err := mk.Encrypt(r.GetPlaintext()); err != nil {
		return nil, err
	}
	return &keyservice.EncryptResponse{Ciphertext: []byte(mk.EncryptedKey)}, nil
}

// EncryptSecret encrypts a Secret manifest (YAML) for the age recipients:
// its data and stringData values, as `sops encrypt --age R
// --encrypted-regex '^(data|stringData)$'` does; the output is read by
// Decrypt and by the sops command line.
func EncryptSecret(name string, data []byte, recipients []string) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("no recipients to encrypt for")
	}
	st := storeFor(name)
	branches, err := st.LoadPlainFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(branches) == 0 {
		return nil, fmt.Errorf("%s: no document to encrypt", name)
	}
	if st.HasSopsTopLevelKey(branches[0]) {
		return nil, fmt.Errorf("%s: already encrypted with sops", name)
	}
	mks, err := sopsage.MasterKeysFromRecipients(strings.Join(recipients, ","))
	if err != nil {
		return nil, fmt.Errorf("recipients: %v", err)
	}
	var group sopsv3.KeyGroup
	for _, mk := range mks {
		group = append(group, mk)
	}
	tree := sopsv3.Tree{Branches: branches, Metadata: sopsv3.Metadata{
		KeyGroups: []sopsv3.KeyGroup{group}, EncryptedRegex: EncryptedRegex, Version: sopsVersion,
	}}
	svcs := []keyservice.KeyServiceClient{keyservice.NewCustomLocalClient(ageService{})}
	key, errs := tree.GenerateDataKeyWithKeyServices(svcs)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: make the data key: %v", name, errors.Join(errs...))
	}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(key, cipher)
	if err != nil {
		return nil, fmt.Errorf("%s: encrypt: %v", name, err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	if tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, key, tree.Metadata.LastModified.Format(time.RFC3339)); err != nil {
		return nil, fmt.Errorf("%s: encrypt the MAC: %v", name, err)
	}
	return st.EmitEncryptedFile(tree)
}

// sopsVersion is the sops format version written into files, that of the
// library that writes them.
const sopsVersion = "3.13.3"

// Sealed returns the sops document data with its metadata removed and
// each encrypted value replaced by a digest of its ciphertext, readable
// without any key: for a plan, which shows which keys of a Secret
// changed and never a value. A value whose ciphertext did not change
// keeps its digest; one encrypted again (sops encrypt picks new data keys)
// shows as changed whether or not its value did.
func Sealed(name string, data []byte) ([]byte, error) {
	st, tree, err := load(name, data)
	if err != nil {
		return nil, err
	}
	for i := range tree.Branches {
		tree.Branches[i] = sealBranch(tree.Branches[i])
	}
	return st.EmitPlainFile(tree.Branches)
}

func sealBranch(b sopsv3.TreeBranch) sopsv3.TreeBranch {
	for i := range b {
		b[i].Value = sealValue(b[i].Value)
	}
	return b
}

func sealValue(v any) any {
	switch v := v.(type) {
	case sopsv3.TreeBranch:
		return sealBranch(v)
	case []any:
		for i := range v {
			v[i] = sealValue(v[i])
		}
		return v
	case string:
		if strings.HasPrefix(v, "ENC[") {
			sum := sha256.Sum256([]byte(v))
			// Base64, so that a Secret's data stays valid.
			return base64.StdEncoding.EncodeToString([]byte("sealed:" + hex.EncodeToString(sum[:8])))
		}
	}
	return v
}
