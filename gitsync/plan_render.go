package gitsync

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// redactedSizes is the annotation the API puts on a Secret it returns
// without values: each key's value size in bytes.
const redactedSizes = keelsonv1alpha1.AnnotationRedactedValueSizes

// Markers that stand for a Secret's values in a diff.
const (
	hiddenValue  = "<hidden>"
	changedValue = "<hidden, changed>"
	unknownValue = "<hidden, not readable>"
)

// hiddenAnnotations are left out of a plan's diffs: the revision and origin
// change with every commit, the others are the API's or could hold secret
// values.
var hiddenAnnotations = []string{AnnotationRevision, AnnotationOrigin, redactedSizes, corev1.LastAppliedConfigAnnotation}

// renderPair renders old (nil when absent) and head as YAML for a diff: the
// spec, labels and annotations Git owns, with defaults filled in; no status,
// no store metadata. A Secret's values are replaced by markers that differ
// where the values differ, and keys lists what changed.
func renderPair(old, head store.Object) (a, b []byte, keys *SecretKeys, err error) {
	var oldData, headData map[string]string
	if s, ok := head.(*corev1.Secret); ok {
		var prev *corev1.Secret
		if old != nil {
			prev, _ = old.(*corev1.Secret)
		}
		oldData, headData, keys = secretMarkers(prev, s)
	}
	if old != nil {
		if a, err = renderObject(old, oldData); err != nil {
			return nil, nil, nil, err
		}
	}
	if head != nil {
		if b, err = renderObject(head, headData); err != nil {
			return nil, nil, nil, err
		}
	}
	return a, b, keys, nil
}

// render encodes obj as YAML; a Secret's data becomes markers.
func renderObject(obj store.Object, markers map[string]string) ([]byte, error) {
	r, err := store.ResourceOf(obj)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", obj.GetName(), err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	m["apiVersion"], m["kind"] = r.GVK.GroupVersion().String(), r.GVK.Kind
	meta := map[string]any{"name": obj.GetName()}
	if ns := obj.GetNamespace(); ns != "" {
		meta["namespace"] = ns
	}
	if l := obj.GetLabels(); len(l) > 0 {
		meta["labels"] = l
	}
	ann := maps.Clone(obj.GetAnnotations())
	for _, k := range hiddenAnnotations {
		delete(ann, k)
	}
	if len(ann) > 0 {
		meta["annotations"] = ann
	}
	m["metadata"] = meta
	if _, ok := obj.(*corev1.Secret); ok {
		delete(m, "stringData")
		delete(m, "data")
		if len(markers) > 0 {
			m["data"] = markers
		}
	}
	return yaml.Marshal(m)
}

// secretData is what a Secret holds once stored: data with stringData
// merged over it, as the Kubernetes API merges them.
func secretData(s *corev1.Secret) map[string][]byte {
	out := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		out[k] = v
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out
}

// secretMarkers compares two Secrets' values without showing them. old's
// values may be redacted by the API (nil, with their sizes in an
// annotation); then values of equal size cannot be told apart.
func secretMarkers(old, head *corev1.Secret) (oldM, headM map[string]string, keys *SecretKeys) {
	keys = &SecretKeys{}
	hd := secretData(head)
	headM = make(map[string]string, len(hd))
	for k := range hd {
		headM[k] = hiddenValue
	}
	if old == nil {
		keys.Added = slices.Sorted(maps.Keys(hd))
		return nil, headM, keys
	}
	od := secretData(old)
	var sizes map[string]int
	if s := old.Annotations[redactedSizes]; s != "" {
		_ = json.Unmarshal([]byte(s), &sizes)
	}
	for k := range sizes {
		if _, ok := od[k]; !ok {
			od[k] = nil // a key the API returned without its value
		}
	}
	oldM = make(map[string]string, len(od))
	for k, ov := range od {
		oldM[k] = hiddenValue
		hv, ok := hd[k]
		switch size, redacted := sizes[k]; {
		case !ok:
			keys.Removed = append(keys.Removed, k)
		case redacted && size != len(hv):
			keys.Changed = append(keys.Changed, k)
			headM[k] = changedValue
		case redacted:
			keys.Unverified = append(keys.Unverified, k)
			oldM[k], headM[k] = unknownValue, unknownValue
		case string(ov) != string(hv):
			keys.Changed = append(keys.Changed, k)
			headM[k] = changedValue
		}
	}
	for k := range hd {
		if _, ok := od[k]; !ok {
			keys.Added = append(keys.Added, k)
		}
	}
	for _, l := range [][]string{keys.Added, keys.Removed, keys.Changed, keys.Unverified} {
		slices.Sort(l)
	}
	return oldM, headM, keys
}

// unifiedDiff is a unified diff of two YAML renderings; a nil a is an
// object that did not exist.
func unifiedDiff(a, b []byte) string {
	d := difflib.UnifiedDiff{
		A:        splitLines(a),
		B:        splitLines(b),
		FromFile: "base",
		ToFile:   "head",
		Context:  3,
	}
	s, err := difflib.GetUnifiedDiffString(d)
	if err != nil {
		return ""
	}
	return s
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
