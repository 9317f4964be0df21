package store

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// publicKeyPrefix is where servers publish public keys of one use, such as
// the keys ServiceAccount tokens are signed with: <root>/<use>/keys/<id>.
func (s *Store) publicKeyPrefix(use string) string {
	return strings.TrimSuffix(s.prefix, "/registry") + "/" + use + "/keys/"
}

// PublishKey records a public key under its id, so that every server
// sharing this etcd can check what the key signed. A key already published
// under the id is left as it is: ids are digests of the keys.
func (s *Store) PublishKey(ctx context.Context, use, id string, public []byte) error {
	if id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("%w: key id %q", ErrInvalid, id)
	}
	key := s.publicKeyPrefix(use) + id
	_, err := s.client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, string(public))).Commit()
	if err != nil {
		return fmt.Errorf("publishing %s key %s: %w", use, id, err)
	}
	return nil
}

// PublishedKeys returns every public key published for use, by id.
func (s *Store) PublishedKeys(ctx context.Context, use string) (map[string][]byte, error) {
	prefix := s.publicKeyPrefix(use)
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading the %s keys: %w", use, err)
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), prefix)] = kv.Value
	}
	return out, nil
}
