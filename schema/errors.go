package schema

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in one document, with everything a person needs to find
// and fix it. File, Line and Column point into the input (Line and Column are
// 1-based, 0 when unknown); Doc is the 1-based index of the document in its
// file (0 for problems with the whole file).
type Error struct {
	File      string `json:"file"`
	Line      int    `json:"line,omitempty"`
	Column    int    `json:"column,omitempty"`
	Doc       int    `json:"document,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// Path is the field, e.g. spec.template.spec.containers[0].image.
	Path string `json:"path,omitempty"`
	Msg  string `json:"message"`
	// Via names what rendered the object when it is not written in File as
	// it stands (a kustomization, a Helm chart, CUE); empty for plain
	// manifests.
	Via string `json:"via,omitempty"`

	pending *pendingCustom // a document of a kind no built-in knows, until its CRD is looked for
}

// Error formats the problem as file:line:col: Kind ns/name: path: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	} else if e.Doc > 0 {
		fmt.Fprintf(&b, " (document %d)", e.Doc)
	}
	b.WriteString(": ")
	if obj := e.object(); obj != "" {
		b.WriteString(obj)
		if e.Via != "" {
			b.WriteString(" (rendered by " + e.Via + ")")
		}
		b.WriteString(": ")
	} else if e.Via != "" {
		b.WriteString("rendered by " + e.Via + ": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) object() string {
	if e.Kind == "" {
		return ""
	}
	switch {
	case e.Name == "":
		return e.Kind
	case e.Namespace == "":
		return e.Kind + " " + e.Name
	}
	return e.Kind + " " + e.Namespace + "/" + e.Name
}

// ErrorList is every problem found in one run, in file and line order.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Err returns l as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Sort orders the list by file, line, column and path.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Doc != b.Doc {
			return a.Doc < b.Doc
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Path < b.Path
	})
}
