package render

import (
	"fmt"
	"testing"
	"testing/fstest"
)

// helmBenchTree is a chart of 100 templates, each a Deployment and its
// Service from shared helpers and values: 200 objects.
func helmBenchTree() fstest.MapFS {
	fsys := fstest.MapFS{
		"apps/shop.yaml": {Data: []byte("apiVersion: keelson.dev/v1alpha1\nkind: HelmChart\nmetadata: {name: shop, namespace: shop}\n" +
			"spec:\n  chart: ../charts/shop\n  valuesFiles: [prod.yaml]\n  values: {replicas: 3}\n")},
		"apps/prod.yaml":          {Data: []byte("image: {tag: \"1.36\"}\nenv: {REGION: eu, LOG: info}\n")},
		"charts/shop/Chart.yaml":  {Data: []byte("apiVersion: v2\nname: shop\nversion: 1.0.0\n")},
		"charts/shop/values.yaml": {Data: []byte("replicas: 1\nimage: {repository: localhost/busybox, tag: latest}\nports: [8080, 8443]\n")},
		"charts/shop/templates/_helpers.tpl": {Data: []byte(`{{- define "shop.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.Version | quote }}
{{- end -}}
`)},
	}
	for i := range 100 {
		fsys[fmt.Sprintf("charts/shop/templates/svc-%03d.yaml", i)] = &fstest.MapFile{Data: fmt.Appendf(nil, `{{- $name := printf "%%s-%03d" .Release.Name }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ $name }}}
  template:
    metadata:
      labels: {app: {{ $name }}}
    spec:
      containers:
      - name: app
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
        env:
        {{- range $k, $v := .Values.env }}
        - {name: {{ $k }}, value: {{ $v | quote }}}
        {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  selector: {app: {{ $name }}}
  ports:
  {{- range .Values.ports }}
  - {name: p{{ . }}, port: {{ . }}}
  {{- end }}
`, i)}
	}
	return fsys
}

// BenchmarkHelmChart200 renders a 200-object chart from its files with no
// cache: the work of a commit that changes one of the chart's inputs.
func BenchmarkHelmChart200(b *testing.B) {
	fsys := helmBenchTree()
	if out := New(Limits{}).Render(b.Context(), fsys, nil); len(out.Errors) > 0 || len(out.Docs) != 200 {
		b.Fatalf("%d objects, errors %v", len(out.Docs), out.Errors)
	}
	b.ReportAllocs()
	for b.Loop() {
		out := New(Limits{}).Render(b.Context(), fsys, nil)
		if len(out.Docs) != 200 {
			b.Fatalf("%d objects", len(out.Docs))
		}
	}
}
