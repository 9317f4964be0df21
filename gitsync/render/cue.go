package render

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"

	"github.com/keelson/keelson/schema"
)

func init() { engines[kindCUE] = renderCUE }

// cueRunning counts the CUE evaluations still running, those given up at
// their deadline included: CUE cannot be stopped midway, so a unit past its
// time returns an error while its evaluation runs on to its end. Tests wait
// for it so that they leave no goroutine behind.
var cueRunning sync.WaitGroup

// cueSlots bounds the CUE evaluations running at once, those given up at
// their deadline included, so that packages that evaluate for ever, commit
// after commit, cannot pile up and take every core and the memory: a unit
// waits for a slot until its own deadline.
var cueSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

type cueResult struct {
	docs []schema.Doc
	errs schema.ErrorList
}

// renderCUE evaluates the CUE packages of folder u.entry as `cue export`
// would, with the repository's CUE module, and returns every object they
// export. The evaluation runs aside and is given up at ctx's end.
func renderCUE(ctx context.Context, t *Tree, u unit, lim Limits) ([]schema.Doc, schema.ErrorList) {
	if err := ctx.Err(); err != nil {
		return nil, cueStopped(u, err, lim)
	}
	select {
	case cueSlots <- struct{}{}:
	case <-ctx.Done():
		t.notToKeep()
		return nil, schema.ErrorList{{File: u.entry, Via: cueVia(u.entry, ""), Msg: fmt.Sprintf(
			"not evaluated: %v while waiting for earlier CUE evaluations that went past their time to end", ctx.Err())}}
	}
	done := make(chan cueResult, 1)
	cueRunning.Add(1)
	go func() {
		defer cueRunning.Done()
		defer func() { <-cueSlots }()
		defer func() {
			// A crash of the evaluator on odd input must not take the
			// process down with it.
			if r := recover(); r != nil {
				done <- cueResult{errs: schema.ErrorList{{File: u.entry, Via: cueVia(u.entry, ""),
					Msg: fmt.Sprintf("the CUE evaluator failed on this package: %v", r)}}}
			}
		}()
		docs, errs := evalCUE(t, u, lim)
		done <- cueResult{docs, errs}
	}()
	select {
	case r := <-done:
		return r.docs, r.errs
	case <-ctx.Done():
		return nil, cueStopped(u, ctx.Err(), lim)
	}
}

func cueStopped(u unit, err error, lim Limits) schema.ErrorList {
	msg := fmt.Sprintf("evaluation stopped: %v", err)
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("evaluation did not end within %s, the limit of one unit "+
			"(an expression that grows without end, or a comprehension over a huge range?)", lim.timeout())
	}
	return schema.ErrorList{{File: u.entry, Via: cueVia(u.entry, ""), Msg: msg}}
}

func evalCUE(t *Tree, u unit, lim Limits) ([]schema.Doc, schema.ErrorList) {
	if err := checkCUERoot(); err != nil {
		return nil, schema.ErrorList{{File: u.entry, Via: cueVia(u.entry, ""), Msg: err.Error()}}
	}
	in := gatherCUE(t, u.entry)
	if len(in.errs) > 0 {
		for _, e := range in.errs {
			e.Via = cueVia(u.entry, "")
		}
		return nil, in.errs
	}
	insts := load.Instances([]string{"."}, in.config(u.entry))
	var errs schema.ErrorList
	for _, inst := range insts {
		if inst.Err != nil {
			errs = append(errs, cueErrors(inst.Err, u.entry, cueVia(u.entry, pkgQualifier(inst, insts)), nil)...)
		}
	}
	for _, e := range errs {
		// The loader's complaints about the module file carry no position.
		if e.Line == 0 && in.modRoot != "" && strings.Contains(e.Msg, "module.cue") {
			e.File = path.Join(in.modRoot, cueModule, "module.cue")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var docs []schema.Doc
	var size int64
	for _, inst := range insts {
		via := cueVia(u.entry, pkgQualifier(inst, insts))
		d, e := exportObjects(inst, u.entry, via)
		errs = append(errs, e...)
		for _, doc := range d {
			if size += int64(len(doc.Data)); size > lim.maxOutput() {
				return nil, schema.ErrorList{{File: u.entry, Via: via,
					Msg: fmt.Sprintf("the package exports more than %d bytes of objects, the limit of one unit", lim.maxOutput())}}
			}
		}
		docs = append(docs, d...)
	}
	return docs, errs
}

// pkgQualifier is inst's package name when its folder holds several.
func pkgQualifier(inst *build.Instance, all []*build.Instance) string {
	if len(all) > 1 {
		return inst.PkgName
	}
	return ""
}

// cueVia names a folder's package for Doc.Via; name is given only when the
// folder holds several packages, as CUE writes it (dir:name).
func cueVia(dir, name string) string {
	if dir == "." {
		dir = "(top folder)"
	}
	if name != "" && name != "_" {
		dir += ":" + name
	}
	return "CUE package " + dir
}

// exportObjects builds one package, refuses it when it is not concrete, as
// `cue export` does, and returns its objects in source order.
func exportObjects(inst *build.Instance, dir, via string) ([]schema.Doc, schema.ErrorList) {
	v := cuecontext.New().BuildInstance(inst)
	if err := v.Err(); err != nil {
		return nil, cueErrors(err, dir, via, &v)
	}
	if err := v.Validate(cue.Concrete(true), cue.Final()); err != nil {
		return nil, cueErrors(err, dir, via, &v)
	}
	var objs []cue.Value
	collectObjects(v, &objs)
	sortCUEByPos(objs)
	docs := make([]schema.Doc, 0, len(objs))
	var errs schema.ErrorList
	for _, o := range objs {
		data, err := o.MarshalJSON()
		if err != nil {
			errs = append(errs, cueErrors(err, dir, via, &v)...)
			continue
		}
		file, line := dir, 0
		if p := o.Pos(); p.IsValid() {
			file, line = cueTreePath(p.Filename(), dir), p.Line()
		}
		docs = append(docs, schema.Doc{File: file, Line: line, Via: via, Data: data})
	}
	return docs, errs
}

// cueTreePath turns a file name of CUE's positions into a path from the tree's
// root; a name CUE made up (a built-in package) stays dir.
func cueTreePath(name, dir string) string {
	name = strings.TrimPrefix(name, cueRoot+"/")
	if name == "" || !strings.HasSuffix(name, ".cue") {
		return dir
	}
	return path.Clean(name)
}

// notToKeep makes what the unit rendered an answer for this time only: an
// input that never reads the same again (a name no tree can hold) makes the
// cache render the unit anew, as a unit that waited for a busy evaluator
// must be once the evaluator is free.
func (t *Tree) notToKeep() { t.record(statKey("\x00not-to-keep"), "keep") }
