package gitsync

import (
	"fmt"
	"strconv"

	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// Labels and annotations gitsync puts on the objects it writes (DESIGN.md,
// "Who writes what").
const (
	// LabelSource names the sync an object comes from; gitsync lists a sync's
	// objects by it and refuses to write objects another sync owns.
	LabelSource = "keelson.dev/source"
	// AnnotationRevision is the revision that last wrote the object: a commit
	// that left the object as it was does not rewrite it.
	AnnotationRevision = "keelson.dev/revision"
	// AnnotationOrigin is "<file>:<line>" of the manifest, relative to the
	// repository root.
	AnnotationOrigin = "keelson.dev/origin"
	// AnnotationPrune set to "disabled" on an object in Git keeps the object in
	// the store after it leaves Git.
	AnnotationPrune = "keelson.dev/prune"
)

// key identifies one object in the store.
type key struct {
	res       string // group-qualified plural
	namespace string
	name      string
}

func (k key) String() string {
	if k.namespace == "" {
		return k.res + " " + k.name
	}
	return k.res + " " + k.namespace + "/" + k.name
}

// desired is one object of a revision, ready to write.
type desired struct {
	key     key
	res     store.Resource
	obj     store.Object
	origin  string // file:line
	src     *schema.Object
	content string // hash of src.File's content (hashContents); "" when unknown
}

// buildDesired turns the loaded objects into the objects to write: target
// namespace filled in, label and annotations set. Two files defining one
// object are an error at both places.
func (s *Syncer) buildDesired(objs []*schema.Object, rev Revision) ([]*desired, map[key]*desired, schema.ErrorList) {
	var errs schema.ErrorList
	list := make([]*desired, 0, len(objs))
	byKey := make(map[key]*desired, len(objs))
	for _, o := range objs {
		obj, ok := o.Object.(store.Object)
		if !ok {
			errs = append(errs, errAt(o, fmt.Sprintf("%T has no object metadata", o.Object)))
			continue
		}
		r, err := store.ResourceOf(obj)
		if err != nil {
			errs = append(errs, errAt(o, err.Error()))
			continue
		}
		if r.Namespaced && obj.GetNamespace() == "" {
			obj.SetNamespace(s.targetNamespace())
		}
		d := &desired{
			key:    key{r.GroupResource(), obj.GetNamespace(), obj.GetName()},
			res:    r,
			obj:    obj,
			origin: o.File + ":" + strconv.Itoa(o.Line),
			src:    o,
		}
		if prev := byKey[d.key]; prev != nil {
			errs = append(errs, errAt(o, fmt.Sprintf("defined twice in this revision, also at %s; delete one of them", prev.origin)))
			continue
		}
		if v, ok := obj.GetLabels()[LabelSource]; ok && v != s.Name {
			errs = append(errs, errAt(o, fmt.Sprintf("label %s=%s: this label is set by keelson to the sync's name (%q); remove it from the manifest", LabelSource, v, s.Name)))
			continue
		}
		labels := copyMap(obj.GetLabels())
		labels[LabelSource] = s.Name
		obj.SetLabels(labels)
		ann := copyMap(obj.GetAnnotations())
		ann[AnnotationOrigin] = d.origin
		ann[AnnotationRevision] = rev.ID
		obj.SetAnnotations(ann)
		byKey[d.key] = d
		list = append(list, d)
	}
	return list, byKey, errs
}

func errAt(o *schema.Object, msg string) *schema.Error {
	return &schema.Error{File: o.File, Line: o.Line, Doc: o.Doc, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, Msg: msg}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}
