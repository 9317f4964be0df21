package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// redactedAnnotation lists, on a secret returned without its values, each
// key's value size in bytes.
const redactedAnnotation = keelsonv1alpha1.AnnotationRedactedValueSizes

// view is how one request sees objects: with or without secret values, as
// objects or as table rows.
type view struct {
	res     store.Resource
	secrets func(namespace string) bool // may see secret values there
	table   bool
	pretty  bool
}

// raw returns e's JSON as this view may see it.
func (v *view) raw(e *entry) ([]byte, error) {
	s, ok := e.obj.(*corev1.Secret)
	if !ok || v.secrets(s.Namespace) {
		return e.raw, nil
	}
	return json.Marshal(redactSecret(s))
}

// redactSecret returns a copy of s with its keys and value sizes only.
func redactSecret(s *corev1.Secret) *corev1.Secret {
	c := s.DeepCopy()
	sizes := map[string]int{}
	for k, val := range c.Data {
		sizes[k] = len(val)
		c.Data[k] = nil
	}
	for k, val := range c.StringData {
		sizes[k] = len(val)
	}
	c.StringData = nil
	b, _ := json.Marshal(sizes)
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[redactedAnnotation] = string(b)
	delete(c.Annotations, corev1.LastAppliedConfigAnnotation)
	return c
}

// writeList writes entries as a <Kind>List, or a Table, at rv.
func (v *view) writeList(w http.ResponseWriter, entries []*entry, rv, cont string) {
	if v.table {
		t, err := v.tableOf(entries)
		if err != nil {
			writeStatus(w, err)
			return
		}
		t.ResourceVersion, t.Continue = rv, cont
		v.writeObject(w, t)
		return
	}
	var buf bytes.Buffer
	buf.Grow(64 + len(entries)*(2+avgSize(entries)))
	meta, _ := json.Marshal(metav1.ListMeta{ResourceVersion: rv, Continue: cont})
	fmt.Fprintf(&buf, `{"kind":%q,"apiVersion":%q,"metadata":%s,"items":[`, v.res.GVK.Kind+"List", v.res.GVK.GroupVersion().String(), meta)
	for i, e := range entries {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := v.raw(e)
		if err != nil {
			writeStatus(w, err)
			return
		}
		buf.Write(b)
	}
	buf.WriteString("]}\n")
	v.writeBytes(w, http.StatusOK, buf.Bytes())
}

func avgSize(entries []*entry) int {
	if len(entries) == 0 {
		return 0
	}
	return len(entries[0].raw)
}

// writeEntry writes one object, or a one-row Table.
func (v *view) writeEntry(w http.ResponseWriter, e *entry) {
	if v.table {
		t, err := v.tableOf([]*entry{e})
		if err != nil {
			writeStatus(w, err)
			return
		}
		t.ResourceVersion = e.obj.GetResourceVersion()
		v.writeObject(w, t)
		return
	}
	b, err := v.raw(e)
	if err != nil {
		writeStatus(w, err)
		return
	}
	v.writeBytes(w, http.StatusOK, b)
}

func (v *view) writeObject(w http.ResponseWriter, obj any) {
	b, err := json.Marshal(obj)
	if err != nil {
		writeStatus(w, err)
		return
	}
	v.writeBytes(w, http.StatusOK, b)
}

func (v *view) writeBytes(w http.ResponseWriter, code int, b []byte) {
	if v.pretty {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			b = out.Bytes()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(b)
}

// wantsTable says whether the client asked for Table output first (kubectl
// asks for meta.k8s.io/v1 or v1beta1 Tables, then plain JSON).
func wantsTable(r *http.Request) bool {
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		if strings.Contains(a, "as=Table") && strings.Contains(a, "g=meta.k8s.io") {
			return true
		}
	}
	return false
}

func sortStrings(s []string) []string {
	slices.Sort(s)
	return s
}
