package gitsync

import (
	"bytes"
	"context"
	"fmt"
	"testing/fstest"

	"github.com/keelson/keelson/schema"
)

// definedElsewhere finds the objects head creates that an untouched file
// already defines: the plan reads only changed files, so such a duplicate
// would otherwise look like a creation. Untouched files are first searched
// for the created names as plain text, and only those that mention one are
// decoded.
func (s *Syncer) definedElsewhere(ctx context.Context, bl *blobs, head planTree, changed map[string]bool, base, created map[key]*desired) (schema.ErrorList, error) {
	names := map[string]bool{}
	for k := range created {
		if base[k] == nil {
			names[k.name] = true
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	others, err := s.loadUntouched(ctx, bl, head, changed, func(data []byte) bool { return mentionsAny(data, names) })
	if err != nil {
		return nil, err
	}
	var errs schema.ErrorList
	for k, d := range created {
		if o := others[k]; o != nil && base[k] == nil {
			errs = append(errs, errAt(d.src, fmt.Sprintf("defined twice in this revision, also at %s; delete one of them", o.origin)))
		}
	}
	return errs, nil
}

// untouchedMentioning decodes the objects of the manifests of head that
// did not change and hold one of words as text.
func (s *Syncer) untouchedMentioning(ctx context.Context, bl *blobs, head planTree, changed map[string]bool, words []string) (map[key]*desired, error) {
	return s.loadUntouched(ctx, bl, head, changed, func(data []byte) bool {
		for _, w := range words {
			if w != "" && bytes.Contains(data, []byte(w)) {
				return true
			}
		}
		return false
	})
}

// loadUntouched decodes the objects of the manifests of head under the
// sync's path that did not change and whose content match accepts, with
// the ignore files that decide which are manifests.
func (s *Syncer) loadUntouched(ctx context.Context, bl *blobs, head planTree, changed map[string]bool, match func([]byte) bool) (map[key]*desired, error) {
	root := s.pathOrRoot()
	m := fstest.MapFS{}
	for name, e := range head {
		if changed[name] || !underRoot(name, root) || !schema.IsManifest(name) {
			continue
		}
		data, err := bl.read(e.hash)
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %v", ErrFetch, name, err)
		}
		if match(data) {
			m[name] = &fstest.MapFile{Data: data, Mode: 0o644}
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	for name, e := range head {
		if schema.IsManifest(name) || !isIgnoreFile(name) {
			continue
		}
		data, err := bl.read(e.hash)
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %v", ErrFetch, name, err)
		}
		m[name] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	others, _, err := s.loadPlanSide(ctx, newTreeFS(m), Revision{})
	return others, err
}

func isIgnoreFile(name string) bool {
	return name == schema.IgnoreFile || bytes.HasSuffix([]byte(name), []byte("/"+schema.IgnoreFile))
}

// mentionsAny reports whether data holds one of names as a whole word of
// the characters object names are made of.
func mentionsAny(data []byte, names map[string]bool) bool {
	word := func(c byte) bool {
		return c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
	}
	for i := 0; i < len(data); {
		if !word(data[i]) {
			i++
			continue
		}
		j := i
		for j < len(data) && word(data[j]) {
			j++
		}
		if names[string(data[i:j])] {
			return true
		}
		i = j
	}
	return false
}
