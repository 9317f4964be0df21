package render

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"github.com/keelson/keelson/schema"
)

// maxCUEDepth bounds the descent through structs and lists in search of
// objects; the evaluator has already refused anything deeper than this
// that loops, so the bound only keeps a runaway value from costing more.
const maxCUEDepth = 100

var (
	cueAPIVersionPath = cue.MakePath(cue.Str("apiVersion"))
	cueKindPath       = cue.MakePath(cue.Str("kind"))
)

// collectObjects appends to out every struct under v that has a string
// apiVersion and kind: fields at any depth and list elements, not looking
// inside an object once found. Hidden fields, definitions and optional
// fields are not exported, so they are not walked.
func collectObjects(v cue.Value, out *[]cue.Value) { collectCUEAt(v, out, 0) }

func collectCUEAt(v cue.Value, out *[]cue.Value, depth int) {
	if depth > maxCUEDepth {
		return
	}
	switch v.IncompleteKind() {
	case cue.StructKind:
		if isCUEObject(v) {
			*out = append(*out, v)
			return
		}
		it, err := v.Fields()
		if err != nil {
			return // Validate reported it
		}
		for it.Next() {
			collectCUEAt(it.Value(), out, depth+1)
		}
	case cue.ListKind:
		it, err := v.List()
		if err != nil {
			return
		}
		for it.Next() {
			collectCUEAt(it.Value(), out, depth+1)
		}
	}
}

func isCUEObject(v cue.Value) bool {
	for _, p := range []cue.Path{cueAPIVersionPath, cueKindPath} {
		f := v.LookupPath(p)
		if !f.Exists() || f.IncompleteKind() != cue.StringKind {
			return false
		}
	}
	return true
}

// sortCUEByPos orders objects as they are written: by file, then line and
// column. Objects without a position keep their order, after the others.
func sortCUEByPos(objs []cue.Value) {
	slices.SortStableFunc(objs, func(a, b cue.Value) int {
		pa, pb := a.Pos(), b.Pos()
		switch {
		case !pa.IsValid() || !pb.IsValid():
			return cueBoolCmp(pb.IsValid(), pa.IsValid())
		case pa.Filename() != pb.Filename():
			return strings.Compare(pa.Filename(), pb.Filename())
		case pa.Line() != pb.Line():
			return pa.Line() - pb.Line()
		}
		return pa.Column() - pb.Column()
	})
}

func cueBoolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// cueErrors turns CUE's errors into keelson's, one per CUE error, at the
// first of its positions in the tree (dir when it has none), with the other
// positions of the same error (the other side of a conflict, the rest of a
// cycle) named in the message.
//
// An error without a position of its own (a reference cycle is reported as
// an incomplete field) is placed where root's field of the error's path is
// written, when root is given.
func cueErrors(err error, dir, via string, root *cue.Value) schema.ErrorList {
	var out schema.ErrorList
	seen := map[string]bool{}
	all := cueerrors.Errors(err)
	for _, e := range all {
		format, args := e.Msg()
		if strings.Contains(format, "errors in empty disjunction") && len(all) > 1 {
			continue // a heading: each alternative's error follows
		}
		msg := strings.ReplaceAll(fmt.Sprintf(format, args...), cueRoot+"/", "")
		msg = strings.TrimPrefix(msg, ": ") // an error of the loader with an empty path
		if cause := errors.Unwrap(e); cause != nil {
			msg += ": " + withoutPos(strings.ReplaceAll(cause.Error(), cueRoot+"/", "")) // what an import failed on
		}
		if strings.HasPrefix(format, "incomplete value") {
			msg += ": an exported field must have a concrete value, as for `cue export`"
			if strings.HasPrefix(msg, "incomplete value _:") {
				msg += " (a field defined only by a cycle of references, a: b and b: a, is _)"
			}
		}
		positions := cuePositions(e)
		if len(positions) == 0 && root != nil && len(e.Path()) > 0 {
			if p := root.LookupPath(cue.ParsePath(strings.Join(e.Path(), "."))).Pos(); p.IsValid() {
				positions = append(positions, p)
			}
		}
		ke := &schema.Error{File: dir, Via: via, Path: strings.Join(e.Path(), "."), Msg: msg}
		if len(positions) > 0 {
			p := positions[0]
			ke.File, ke.Line, ke.Column = cueTreePath(p.Filename(), dir), p.Line(), p.Column()
			var also []string
			for _, q := range positions[1:] {
				also = append(also, fmt.Sprintf("%s:%d:%d", cueTreePath(q.Filename(), dir), q.Line(), q.Column()))
			}
			if len(also) > 0 {
				ke.Msg += " (see also " + strings.Join(also, ", ") + ")"
			}
		}
		if key := ke.Error(); !seen[key] {
			seen[key] = true
			out = append(out, ke)
		}
	}
	if len(out) == 0 {
		out = schema.ErrorList{{File: dir, Via: via, Msg: err.Error()}}
	}
	return out
}

// cuePositions are e's positions in .cue files, the error's own first
// among those of the package's files, without repeats.
func cuePositions(e cueerrors.Error) []token.Pos {
	var out []token.Pos
	add := func(p token.Pos) {
		if !p.IsValid() || !strings.HasSuffix(p.Filename(), ".cue") {
			return
		}
		for _, q := range out {
			if q.Filename() == p.Filename() && q.Line() == p.Line() && q.Column() == p.Column() {
				return
			}
		}
		out = append(out, p)
	}
	add(e.Position())
	for _, p := range cueerrors.Positions(e) {
		add(p)
	}
	// The package's own files first: a person fixes the value written
	// there, not the types kept under cue.mod (generated, copied, or
	// keelson's definitions).
	slices.SortStableFunc(out, func(a, b token.Pos) int {
		return cueBoolCmp(inCUEMod(a.Filename()), inCUEMod(b.Filename()))
	})
	return out
}

func inCUEMod(name string) bool {
	return strings.Contains(name, "/"+cueModule+"/")
}

// withoutPos takes off the "file.cue:line:col: " a wrapped CUE error starts
// with: the error's position is given once, in its own fields.
func withoutPos(msg string) string {
	msg = strings.TrimSpace(msg)
	if i := strings.Index(msg, ".cue:"); i >= 0 && !strings.ContainsAny(msg[:i], " \n") {
		if _, rest, ok := strings.Cut(msg[i:], ": "); ok {
			return rest
		}
	}
	return msg
}
