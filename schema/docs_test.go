package schema

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadDocsAndSkip(t *testing.T) {
	s := testSchema(t)
	fsys := fstest.MapFS{
		"plain.yaml":                 {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n")},
		"overlay/kustomization.yaml": {Data: []byte("resources: [cm.yaml]\n")},
		"overlay/cm.yaml":            {Data: []byte("this is not read: the renderer read it\n")},
	}
	docs := []Doc{
		{File: "overlay/cm.yaml", Line: 1, Via: "kustomization overlay/kustomization.yaml",
			Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rendered\n")},
		{File: "overlay/cm.yaml", Line: 7, Via: "kustomization overlay/kustomization.yaml",
			Data: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}`)},
	}
	for _, cache := range []*Cache{nil, NewCache(10)} {
		var opts []Option
		if cache != nil {
			opts = append(opts, WithCache(cache))
		}
		objs, err := s.Load(t.Context(), fsys, nil, append(opts, WithDocs(docs), WithSkip([]string{"overlay"}))...)
		var problems ErrorList
		if !errors.As(err, &problems) || len(problems) != 1 {
			t.Fatalf("want one problem (the bad name), got %v", err)
		}
		p := problems[0]
		if p.File != "overlay/cm.yaml" || p.Line != 7 || p.Via == "" ||
			!strings.Contains(p.Error(), "overlay/cm.yaml:7: ConfigMap default/Bad_Name (rendered by kustomization overlay/kustomization.yaml)") {
			t.Errorf("problem does not point at the document's file and renderer: %s", p)
		}
		if len(objs) != 2 || objs[0].Name != "plain" || objs[1].Name != "rendered" {
			t.Fatalf("objects: want plain then rendered, got %d", len(objs))
		}
		if o := objs[1]; o.File != "overlay/cm.yaml" || o.Line != 1 || o.Via != docs[0].Via {
			t.Errorf("rendered object at %s:%d via %q", o.File, o.Line, o.Via)
		}
	}
}
