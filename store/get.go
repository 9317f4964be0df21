package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Get reads one object into into, which must be a new, typed object of the
// kind wanted (&corev1.Pod{}); namespace is empty for cluster-scoped kinds.
// Errors: ErrNotFound, ErrCorrupt, ErrInvalid, ErrUnknownKind.
func (s *Store) Get(ctx context.Context, namespace, name string, into Object) (err error) {
	start := time.Now()
	defer func() { s.metrics.observe("get", start, err) }()
	r, err := ResourceOf(into)
	if err != nil {
		return err
	}
	key, err := s.key(r, namespace, name)
	if err != nil {
		return err
	}
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("get %s %s: %w", r, join(namespace, name), err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("%s %s: %w", r, join(namespace, name), ErrNotFound)
	}
	kv := resp.Kvs[0]
	return s.cache.decodeInto(r, kv, into)
}

func join(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// ignoredForGeneration are the top-level fields whose changes do not bump
// metadata.generation, as in Kubernetes: everything else is the spec.
var ignoredForGeneration = map[string]bool{"metadata": true, "status": true, "apiVersion": true, "kind": true}

// specChanged reports whether two encoded objects differ outside metadata and
// status.
func specChanged(old, cur []byte) (bool, error) {
	var a, b map[string]json.RawMessage
	if err := json.Unmarshal(old, &a); err != nil {
		return false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := json.Unmarshal(cur, &b); err != nil {
		return false, err
	}
	for k, v := range b {
		if !ignoredForGeneration[k] && !bytes.Equal(a[k], v) {
			return true, nil
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok && !ignoredForGeneration[k] {
			return true, nil
		}
	}
	return false, nil
}
