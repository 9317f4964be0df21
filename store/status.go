package store

import (
	"context"
	"fmt"
	"reflect"
)

// UpdateStatus replaces only the .status of the stored object with obj's,
// compare-and-swap: when obj carries a resourceVersion it must still be the
// stored one. Everything else in obj is ignored, so a writer of status cannot
// change a spec, labels or annotations. On success obj holds the stored object.
// Errors: ErrNotFound, ErrConflict, ErrInvalid (the kind has no status),
// ErrUnknownKind.
func (s *Store) UpdateStatus(ctx context.Context, obj Object) error {
	r, err := ResourceOf(obj)
	if err != nil {
		return err
	}
	status := reflect.ValueOf(obj).Elem().FieldByName("Status")
	if !status.IsValid() {
		return fmt.Errorf("%w: %s has no status", ErrInvalid, r)
	}
	cur, err := r.New()
	if err != nil {
		return err
	}
	if err := s.Get(ctx, obj.GetNamespace(), obj.GetName(), cur); err != nil {
		return err
	}
	if rv := obj.GetResourceVersion(); rv != "" && rv != cur.GetResourceVersion() {
		return fmt.Errorf("%s %s: %w: resourceVersion %s is stale, the stored one is %s",
			r, join(obj.GetNamespace(), obj.GetName()), ErrConflict, rv, cur.GetResourceVersion())
	}
	reflect.ValueOf(cur).Elem().FieldByName("Status").Set(status)
	if err := s.Update(ctx, cur); err != nil {
		return err
	}
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(cur).Elem())
	return nil
}
