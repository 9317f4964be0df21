package gitsync

import (
	"crypto/sha256"
	"io/fs"

	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// memory is what a Syncer remembers of the objects it last applied: for
// each, the file it came from, that file's content, and the resourceVersion
// at which the store was last seen holding exactly what Git says. An object
// whose file and stored resourceVersion are both as remembered still matches
// Git, so Apply skips comparing it; an update of an object whose file is as
// remembered puts back a change made in the store behind Git's back (drift).
//
// The memory lives in the process only. A new Syncer (a restart) has none:
// its first Apply compares every object and reports no drift, since it cannot
// tell drift from a change in Git that it never saw applied.
type memory struct {
	// The settings the entries were made under; other settings give other
	// desired objects from the same files.
	name, namespace string
	schema          *schema.Schema

	objs map[key]applied
}

// applied is the memory of one object.
type applied struct {
	file    string // the manifest's path
	content string // hash of the file's content when the sync applied it
	// rv is the resourceVersion of the store's copy when the sync last found
	// it matching the file; empty after the sync wrote it, until the next
	// Apply compares it again.
	rv string
	// replicasOwner is the autoscaler that owned the object's replicas then:
	// when that changes, the object is compared again.
	replicasOwner string
}

// remembered returns the memory of the object d when it was made under the
// Syncer's current settings.
func (s *Syncer) remembered(d *desired) (applied, bool) {
	m := s.memory()
	if m == nil {
		return applied{}, false
	}
	a, ok := m.objs[d.key]
	return a, ok && d.content != "" && a.file == d.src.File && a.content == d.content && a.replicasOwner == d.replicasOwner
}

// memory returns the Syncer's memory when it was made under the current
// settings, else nil.
func (s *Syncer) memory() *memory {
	m := s.mem
	if m == nil || m.name != s.Name || m.namespace != s.targetNamespace() || m.schema != s.Schema {
		return nil
	}
	return m
}

// unchanged reports whether d still matches the store's copy cur without
// comparing them: neither its file nor cur changed since the sync last saw
// them match.
func (s *Syncer) unchanged(d *desired, cur store.Object) bool {
	if cur == nil {
		return false
	}
	a, ok := s.remembered(d)
	return ok && a.rv != "" && a.rv == cur.GetResourceVersion()
}

// remember records what the store holds after an Apply: the objects found
// matching at their resourceVersion, the objects written (to be compared once
// more), and, for objects whose write did not happen, what was known before.
// Objects not in the revision are forgotten.
func (s *Syncer) remember(changes []*Change) {
	prev := s.memory()
	next := &memory{name: s.Name, namespace: s.targetNamespace(), schema: s.Schema, objs: make(map[key]applied, len(changes))}
	for _, c := range changes {
		d := c.d
		switch {
		case d == nil || d.content == "": // a deletion, or a file not hashed
		case c.Action == Unchanged:
			next.objs[d.key] = applied{file: d.src.File, content: d.content, rv: c.cur.GetResourceVersion(), replicasOwner: d.replicasOwner}
		case c.done:
			next.objs[d.key] = applied{file: d.src.File, content: d.content, replicasOwner: d.replicasOwner}
		case prev != nil:
			if a, ok := prev.objs[d.key]; ok {
				next.objs[d.key] = a
			}
		}
	}
	s.mem = next
}

// hashContents sets the content hash of each object's file, leaving it
// empty for a file that cannot be read (its objects are then always
// compared).
func hashContents(fsys fs.FS, list []*desired) {
	hashes := map[string]string{}
	for _, d := range list {
		if d.src.Digest != "" {
			d.content = d.src.Digest // rendered: its document, not its file, says what it is
			continue
		}
		h, ok := hashes[d.src.File]
		if !ok {
			if data, err := fs.ReadFile(fsys, d.src.File); err == nil {
				sum := sha256.Sum256(data)
				h = string(sum[:])
			}
			hashes[d.src.File] = h
		}
		d.content = h
	}
}
