// Package sops reads and writes manifests encrypted with SOPS for age
// keys, so that Secrets can live in Git: the sync decrypts them with the
// keys the server holds (keelson server --decryption-key-file), and
// `keelson secret encrypt` writes them for the cluster's recipients, in
// the format the sops command line reads and writes.
//
//	keys, err := sops.LoadKeyFiles("/etc/keelson/age.key")
//	plain, err := keys.Decrypt("deploy/db-secret.yaml", data)
//	enc, err := sops.EncryptSecret(manifest, keys.Recipients())
//
// Only age keys are used: a file whose data key is held by a cloud KMS,
// PGP or Vault is refused (ErrNoKey) rather than decrypted with whatever
// credentials the process's environment holds. The MAC over the file's
// values is checked, so a value changed, removed or added without the key
// is refused (ErrTampered). Errors name the file and never carry a value.
package sops
