package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/keelson/keelson/store/encryption"
)

// ErrSealed means a stored value is encrypted and this store cannot open it:
// it has no encryption keys, not the key the value names, or another key of
// that name.
var ErrSealed = errors.New("store: encrypted value this server cannot open")

// values seals the values of Secrets with the store's encryption keys before
// they are written, and opens sealed values when they are read. With no keys,
// values are written as they are, and a sealed value fails to read.
type values struct {
	keys *encryption.Keys
}

// source names where the keys come from, for errors.
func (v *values) source() string {
	if p := v.keys.Path(); p != "" {
		return p
	}
	return "the encryption keys"
}

// sealedResource says whether r's values are sealed when keys are set.
func sealedResource(r Resource) bool {
	return r.GVK.Group == "" && r.Plural == "secrets"
}

func (v *values) seal(r Resource, key string, value []byte) ([]byte, error) {
	if v == nil || v.keys == nil || !sealedResource(r) {
		return value, nil
	}
	return v.keys.Seal([]byte(key), value)
}

func (v *values) open(key, stored []byte) ([]byte, error) {
	if !encryption.IsSealed(stored) {
		return stored, nil
	}
	if v == nil || v.keys == nil {
		return nil, fmt.Errorf("%w: key %s: no --encryption-key-file holds its key", ErrSealed, key)
	}
	value, _, err := v.keys.Open(key, stored)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %v in %s", ErrSealed, key, err, v.source())
	}
	return value, nil
}

// SetEncryption has the store seal the values of Secrets with keys' primary
// key from now on, and open values sealed with any of keys. Call it before
// the store is used.
func (s *Store) SetEncryption(keys *encryption.Keys) { s.vals.keys = keys }

// keyCheckText is what each key's check value holds, sealed.
const keyCheckText = "keelson encryption key check"

func (s *Store) keyCheckPrefix() string {
	return strings.TrimSuffix(s.prefix, "/registry") + "/encryption/keys/"
}

// CheckEncryptionKeys makes sure this store can open every value another
// server may have sealed: each server leaves a check value sealed with its
// primary key under <root>/encryption/keys/<name>, and a key named there that
// this store lacks, or holds with other bytes, fails the check, naming it.
// It then records its own primary key. A store without keys only checks.
// A failed check is ErrSealed or ErrCorrupt; any other error is etcd's and
// worth trying again.
func (s *Store) CheckEncryptionKeys(ctx context.Context) error {
	resp, err := s.client.Get(ctx, s.keyCheckPrefix(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("reading the encryption key checks: %w", err)
	}
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.keyCheckPrefix())
		value, err := s.vals.open(kv.Key, kv.Value)
		switch {
		case errors.Is(err, ErrSealed) && s.vals.keys == nil:
			return fmt.Errorf("%w: etcd holds values encrypted with key %q and this server has no --encryption-key-file: give every server the same key file", ErrSealed, name)
		case err != nil:
			return fmt.Errorf("%w: etcd holds values encrypted with key %q, not in %s (or there with other bytes): give every server the same key file", ErrSealed, name, s.vals.source())
		case string(value) != keyCheckText:
			return fmt.Errorf("%w: key %s holds no key check", ErrCorrupt, kv.Key)
		}
	}
	if s.vals.keys == nil {
		return nil
	}
	key := s.keyCheckPrefix() + s.vals.keys.Primary()
	sealed, err := s.vals.keys.Seal([]byte(key), []byte(keyCheckText))
	if err != nil {
		return err
	}
	_, err = s.client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, string(sealed))).Commit()
	if err != nil {
		return fmt.Errorf("recording encryption key %q: %w", s.vals.keys.Primary(), err)
	}
	return nil
}

// ResealResult says what a Reseal did.
type ResealResult struct {
	// Sealed is how many values were sealed again with the primary key.
	Sealed int
	// Left counts the values still under another key or not sealed, which
	// changed while being sealed again; a later Reseal takes them.
	Left int
	// Dropped lists the keys whose check value was removed: no value is
	// sealed with them any more, so they may leave the key file.
	Dropped []string
}

// resealPage is how many values Reseal reads at once.
const resealPage = 500

// Reseal seals again with the primary key every Secret stored unsealed or
// with another key, each by a compare-and-swap on its revision, so a write
// meanwhile wins and the value is left for the next run. When none is left
// under a key, that key's check value goes, so servers no longer ask for it.
// Resealing changes no object, but it writes a new revision of each (watchers
// see an update). Only the leader should run it.
func (s *Store) Reseal(ctx context.Context) (ResealResult, error) {
	var res ResealResult
	keys := s.vals.keys
	if keys == nil {
		return res, nil
	}
	r, err := ResourceByName("secrets")
	if err != nil {
		return res, err
	}
	used := map[string]bool{keys.Primary(): true}
	from, end := s.rangePrefix(r, ""), clientv3.GetPrefixRangeEnd(s.rangePrefix(r, ""))
	for {
		resp, err := s.client.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(resealPage))
		if err != nil {
			return res, fmt.Errorf("reading secrets to seal again: %w", err)
		}
		for _, kv := range resp.Kvs {
			value, stale, err := keys.Open(kv.Key, kv.Value)
			if err != nil {
				return res, fmt.Errorf("%w: key %s: %v in %s", ErrSealed, kv.Key, err, s.vals.source())
			}
			if !stale {
				continue
			}
			sealed, err := keys.Seal(kv.Key, value)
			if err != nil {
				return res, err
			}
			t, err := s.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)).
				Then(clientv3.OpPut(string(kv.Key), string(sealed))).Commit()
			if err != nil {
				return res, fmt.Errorf("sealing %s again: %w", kv.Key, err)
			}
			if t.Succeeded {
				res.Sealed++
				continue
			}
			res.Left++
			if name, ok := encryption.KeyName(kv.Value); ok {
				used[name] = true
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	checks, err := s.client.Get(ctx, s.keyCheckPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return res, fmt.Errorf("reading the encryption key checks: %w", err)
	}
	for _, kv := range checks.Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.keyCheckPrefix())
		if used[name] || res.Left > 0 {
			continue
		}
		if _, err := s.client.Delete(ctx, string(kv.Key)); err != nil {
			return res, fmt.Errorf("removing the check of key %q: %w", name, err)
		}
		res.Dropped = append(res.Dropped, name)
	}
	return res, nil
}
