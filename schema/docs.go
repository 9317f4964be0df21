package schema

import (
	"bytes"
	"crypto/sha256"
	"path"
	"strings"
)

// A Doc is a manifest that is not a file of the tree as it stands: an object
// rendered from a kustomization, a Helm chart or a CUE package. Load
// validates it like a file, and its objects and errors point at File, the
// file a person edits to change it, with Via saying what rendered it.
type Doc struct {
	// File is the file the object comes from, slash-separated from the
	// tree's root: the resource a kustomization read, the chart's template,
	// the .cue file. Required.
	File string
	// Line is where in File the object is written, 1-based; 0 when unknown
	// (a template's output has no line of its own).
	Line int
	// Via names the renderer and its entry, e.g. "kustomization
	// overlays/prod/kustomization.yaml". Required.
	Via string
	// Data is the rendered object, one YAML or JSON document.
	Data []byte
}

// WithDocs validates docs beside the files of the tree. Their objects come
// after the files' in the result, in the order given.
func WithDocs(docs []Doc) Option { return func(c *config) { c.docs = docs } }

// WithSkip leaves out of the files read the given paths (files, or folders
// with everything below them): the inputs of a renderer, which are read by it
// and must not be read again as plain manifests.
func WithSkip(paths []string) Option {
	return func(c *config) {
		if c.skip == nil {
			c.skip = map[string]bool{}
		}
		for _, p := range paths {
			c.skip[path.Clean(p)] = true
		}
	}
}

// loadDoc validates one rendered document and points its objects and errors
// at the document's file. Positions inside the rendered text mean nothing to
// a person, so they become the document's own.
func (s *Schema) loadDoc(d Doc, cfg *config) ([]*Object, ErrorList) {
	name := "rendered.yaml"
	if t := bytes.TrimSpace(d.Data); len(t) > 0 && t[0] == '{' {
		name = "rendered.json"
	}
	var objs []*Object
	var errs ErrorList
	if cfg.cache == nil {
		objs, errs = s.validateFile(name, d.Data, cfg.maxFileSize)
	} else {
		objs, errs = cfg.cache.validate(name, d.Data, cfg.shared, func() ([]*Object, ErrorList) {
			return s.validateFile(name, d.Data, cfg.maxFileSize)
		})
	}
	sum := sha256.Sum256(d.Data)
	for _, o := range objs {
		o.File, o.Line, o.Doc, o.Via = d.File, d.Line, 0, d.Via
		o.Digest = d.Via + "\x00" + string(sum[:])
	}
	for _, e := range errs {
		e.File, e.Line, e.Column, e.Doc, e.Via = d.File, d.Line, 0, 0, d.Via
		e.Msg = strings.TrimSpace(e.Msg)
	}
	return objs, errs
}
