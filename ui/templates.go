package ui

import (
	"html/template"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pageFiles are the pages; each is parsed with layout.html.
var pageFiles = []string{"login.html", "sources.html", "source.html", "pod.html", "nodes.html", "search.html", "object.html"}

var funcs = template.FuncMap{
	"ago": func(t any) string {
		switch t := t.(type) {
		case *metav1.Time:
			return ago(t)
		case metav1.Time:
			return ago(&t)
		}
		return ""
	},
	"when": func(t *metav1.Time) string {
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 MST")
	},
	"lower": strings.ToLower,
	// dur is a sync's duration to the millisecond, or 0.1 s past a second.
	"dur": func(d time.Duration) string {
		if d >= time.Second {
			return d.Round(100 * time.Millisecond).String()
		}
		return d.Round(time.Millisecond).String()
	},
	"short": short,
}

func parseTemplates() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	out := make(map[string]*template.Template, len(pageFiles))
	for _, f := range pageFiles {
		out[f] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+f))
	}
	return out
}
