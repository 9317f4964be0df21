package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/encryption"
)

// defaultEncryptionKeyFile is where a server keeps its encryption keys when
// --encryption-key-file is not given.
const defaultEncryptionKeyFile = "encryption-keys.yaml"

// encryptionKeys reads --encryption-key-file. Without the flag it reads
// <data-dir>/encryption-keys.yaml, making it with a fresh key on a first
// start; a file named by the flag must exist.
func (o *serverOptions) encryptionKeys(log *slog.Logger) (*encryption.Keys, error) {
	path := o.encryptionKeyFile
	if path != "" {
		keys, err := encryption.Load(path)
		if err != nil {
			return nil, fmt.Errorf("--encryption-key-file: %w", err)
		}
		return keys, nil
	}
	path = filepath.Join(o.dataDir, defaultEncryptionKeyFile)
	keys, err := encryption.Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return keys, err
	}
	if keys, err = encryption.Generate(path); err != nil {
		return nil, err
	}
	log.Info("encryption key made: Secrets are encrypted with it in etcd (other servers on this etcd need a copy of the file)", "path", path, "key", keys.Primary())
	return keys, nil
}

// checkEncryptionKeys waits for etcd, then makes sure this server holds every
// key other servers seal Secrets with (store.CheckEncryptionKeys).
func checkEncryptionKeys(ctx context.Context, st *store.Store, log *slog.Logger) error {
	waitForEtcd(ctx, st, log)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := st.CheckEncryptionKeys(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil // stopping
		case err == nil || keyCheckFailed(err):
			return err
		}
		// etcd's own trouble (a member going away, a leader election)
		// passes; the check is tried again.
		log.Warn("checking the encryption keys against etcd; trying again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// keyCheckFailed tells a failed key check, which stops the server, from
// etcd's trouble, after which the check is tried again.
func keyCheckFailed(err error) bool {
	return errors.Is(err, store.ErrSealed) || errors.Is(err, store.ErrCorrupt)
}

// resealInterval is how long the leader waits before sealing again the
// Secrets written meanwhile under an older key.
const resealInterval = time.Minute

// resealSecrets seals again with the primary key every Secret under an older
// key (or none), once a term and until none is left, logging what it did and
// which keys may leave the key file.
func resealSecrets(ctx context.Context, st *store.Store, keys *encryption.Keys, log *slog.Logger) {
	for {
		res, err := st.Reseal(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error("sealing Secrets again with the current encryption key", "key", keys.Primary(), "err", err)
		case res.Sealed > 0 || res.Left > 0:
			log.Info("Secrets sealed again with the current encryption key", "key", keys.Primary(), "sealed", res.Sealed, "left", res.Left)
		}
		for _, name := range res.Dropped {
			log.Info("no Secret is sealed with this encryption key any more: it may leave the key file", "key", name, "file", keys.Path())
		}
		if err == nil && res.Left == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(resealInterval):
		}
	}
}
