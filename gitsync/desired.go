package gitsync

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// Labels and annotations gitsync puts on the objects it writes; they are
// keelson's API (api/v1alpha1), which the other components read.
const (
	LabelSource        = keelsonv1alpha1.LabelSource
	AnnotationRevision = keelsonv1alpha1.AnnotationRevision
	AnnotationOrigin   = keelsonv1alpha1.AnnotationOrigin
	AnnotationPrune    = keelsonv1alpha1.AnnotationPrune
	// AnnotationReplaceOnChange: see keelsonv1alpha1.AnnotationReplaceOnChange.
	AnnotationReplaceOnChange = keelsonv1alpha1.AnnotationReplaceOnChange
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
	rev     string // the revision's ID

	encrypted bool // src.File is encrypted with sops in Git
	// replicasOwner names the HorizontalPodAutoscaler of the revision that
	// scales the object: its spec.replicas is the autoscaler's.
	replicasOwner string

	// wave is the object's wave (AnnotationWave); hook is set when the
	// object is a hook, run rather than synced (order.go).
	wave int
	hook *hookSpec

	shared   bool // obj is the schema cache's: copy it before writing
	finished bool // obj is ready to write (finish)
}

// buildDesired turns the loaded objects into the objects to write: target
// namespace filled in, label and annotations set. Two files defining one
// object are an error at both places.
func (s *Syncer) buildDesired(objs []*schema.Object, rev Revision) ([]*desired, map[key]*desired, schema.ErrorList) {
	list, byKey, errs := s.collect(objs, rev, false)
	for _, d := range list {
		s.finish(d)
	}
	return list, byKey, errs
}

// collect is buildDesired without the writing of namespaces, labels and
// annotations, which finish does for the objects that need it: a sync of
// 10,000 objects compares only those whose file changed. When shared, the
// objects are the schema cache's own and finish copies them before writing.
func (s *Syncer) collect(objs []*schema.Object, rev Revision, shared bool) ([]*desired, map[key]*desired, schema.ErrorList) {
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
		ns := obj.GetNamespace()
		if r.Namespaced && ns == "" {
			ns = s.targetNamespace()
		}
		wave, hook, problems := ordering(o, obj)
		if len(problems) > 0 {
			errs = append(errs, problems...)
			continue
		}
		d := &desired{
			key:    key{r.GroupResource(), ns, obj.GetName()},
			res:    r,
			obj:    obj,
			origin: originOf(o),
			src:    o,
			rev:    rev.ID,
			wave:   wave,
			hook:   hook,
			shared: shared,
		}
		if prev := byKey[d.key]; prev != nil {
			errs = append(errs, errAt(o, fmt.Sprintf("defined twice in this revision, also at %s; delete one of them", prev.origin)))
			continue
		}
		if v, ok := obj.GetLabels()[LabelSource]; ok && v != s.Name {
			errs = append(errs, errAt(o, fmt.Sprintf("label %s=%s: this label is set by keelson to the sync's name (%q); remove it from the manifest", LabelSource, v, s.Name)))
			continue
		}
		byKey[d.key] = d
		list = append(list, d)
	}
	return list, byKey, errs
}

// finish makes d.obj the object to write, once: its own copy, in its
// namespace, with the sync's label and the origin and revision annotations.
func (s *Syncer) finish(d *desired) {
	if d.finished {
		return
	}
	d.finished = true
	obj := d.obj
	if d.shared {
		if c, ok := obj.DeepCopyObject().(store.Object); ok {
			obj, d.obj = c, c
		}
	}
	obj.SetNamespace(d.key.namespace)
	if sec, ok := obj.(*corev1.Secret); ok {
		mergeStringData(sec)
	}
	labels := copyMap(obj.GetLabels())
	labels[LabelSource] = s.Name
	obj.SetLabels(labels)
	ann := copyMap(obj.GetAnnotations())
	ann[AnnotationOrigin] = d.origin
	ann[AnnotationRevision] = d.rev
	obj.SetAnnotations(ann)
}

// mergeStringData moves a Secret's stringData into its data, as Kubernetes'
// API does on every write: stringData is a convenience for writing, never
// stored, and its values win over data's.
func mergeStringData(s *corev1.Secret) {
	if len(s.StringData) == 0 {
		s.StringData = nil
		return
	}
	data := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		data[k] = v
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	s.Data, s.StringData = data, nil
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

// originOf is where an object is written: file:line, or the file alone for
// a rendered object whose line is not known.
func originOf(o *schema.Object) string {
	if o.Line == 0 {
		return o.File
	}
	return o.File + ":" + strconv.Itoa(o.Line)
}

// renderedBy names what rendered the object; "" for one written as it is.
func (d *desired) renderedBy() string {
	if d.src == nil {
		return ""
	}
	return d.src.Via
}
