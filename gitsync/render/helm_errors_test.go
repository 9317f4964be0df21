package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"text/template"
	"time"

	"go.uber.org/goleak"
)

// helmChartDoc is a HelmChart at line 7 of apps/c.yaml, after a plain
// manifest.
func helmChartDoc(spec string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: beside, namespace: ns}\ndata: {a: b}\n---\n# the chart\n" +
		"apiVersion: keelson.dev/v1alpha1\nkind: HelmChart\nmetadata: {name: c, namespace: ns}\nspec:\n" + spec
}

// badChartTree is a repository with chart charts/c whose one template is
// tmpl, and apps/c.yaml with a HelmChart of spec.
func badChartTree(spec, tmpl string) fstest.MapFS {
	return fstest.MapFS{
		"apps/c.yaml":                 {Data: []byte(helmChartDoc(spec))},
		"apps/values/ok.yaml":         {Data: []byte("x: 1\n")},
		"charts/c/Chart.yaml":         {Data: []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n")},
		"charts/c/templates/cm.yaml":  {Data: []byte(tmpl)},
		"charts/dep/Chart.yaml":       {Data: []byte("apiVersion: v2\nname: dep\nversion: 0.1.0\ndependencies:\n- {name: db, version: 1.2.3, repository: https://charts.example.com}\n")},
		"charts/dep/templates/a.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")},
		"charts/s/Chart.yaml":         {Data: []byte("apiVersion: v2\nname: s\nversion: 0.1.0\n")},
		"charts/s/values.yaml":        {Data: []byte("replicas: 1\n")},
		"charts/s/values.schema.json": {Data: []byte(`{"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}, "required": ["replicas"]}`)},
		"charts/s/templates/a.yaml":   {Data: []byte(okTemplate)},
		"charts/r/Chart.yaml":         {Data: []byte("apiVersion: v2\nname: r\nversion: 0.1.0\n")},
		"charts/r/values.schema.json": {Data: []byte(`{"$ref": "https://schemas.example.com/values.json"}`)},
		"charts/r/templates/a.yaml":   {Data: []byte(okTemplate)},
	}
}

const okTemplate = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"

// helmBadInputs are charts and HelmCharts that must fail, each with the
// file and line its one error names.
var helmBadInputs = []struct {
	name       string
	spec, tmpl string
	lim        Limits
	file       string // the file the error names
	line       int
	want       []string // in the message
}{
	{name: "missing values file", spec: "  chart: ../charts/c\n  valuesFiles: [values/ok.yaml, values/missing.yaml]\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"HelmChart ns/c: spec.valuesFiles[1]: values/missing.yaml: cannot read the values file apps/values/missing.yaml: no such file"}},
	{name: "values file out of the repository", spec: "  chart: ../charts/c\n  valuesFiles: [../../../etc/passwd]\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"spec.valuesFiles[0]: ../../../etc/passwd: outside the repository"}},
	{name: "values file not YAML", spec: "  chart: ../charts/c\n  valuesFiles: [../charts/c/templates/cm.yaml]\n", tmpl: "a: [\n",
		file: "charts/c/templates/cm.yaml", want: []string{"values file (spec.valuesFiles[0] of HelmChart ns/c in apps/c.yaml)"}},
	{name: "chart out of the repository", spec: "  chart: ../../../etc\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"spec.chart: ../../../etc: outside the repository"}},
	{name: "no chart there", spec: "  chart: ../charts/none\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"spec.chart: ../charts/none: no chart folder or archive at charts/none"}},
	{name: "folder without Chart.yaml", spec: "  chart: ../apps\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"apps is a folder without Chart.yaml: not a chart"}},
	{name: "archive that is not one", spec: "  chart: values/ok.yaml\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"chart archive apps/values/ok.yaml:"}},
	{name: "dependency not vendored", spec: "  chart: ../charts/dep\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"dependency db 1.2.3 (from https://charts.example.com) of chart dep is not in its charts/ folder"}},
	{name: "chart repository", spec: "  chart: redis\n  repoURL: oci://registry.example.com/charts\n  version: 1.0.0\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"spec.repoURL: oci://registry.example.com/charts: chart repositories are not enabled on this server (keelson server --chart-repository URL); vendor the chart into the repository"}},
	{name: "values against the chart's schema", spec: "  chart: ../charts/s\n  values: {replicas: 0}\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"the values do not match charts/s/values.schema.json:", "minimum"}},
	{name: "schema referring to a URL", spec: "  chart: ../charts/r\n", tmpl: okTemplate,
		file: "apps/c.yaml", line: 7, want: []string{"charts/r/values.schema.json:", "https://schemas.example.com/values.json", "keelson reads no schema from elsewhere"}},
	{name: "chart file too large", spec: "  chart: ../charts/c\n", tmpl: "# " + strings.Repeat("x", 5<<20) + "\n",
		file: "apps/c.yaml", line: 7, want: []string{"charts/c/templates/cm.yaml is larger than 5242880 bytes, Helm's bound for a chart's file"}},
	{name: "template error", spec: "  chart: ../charts/c\n", tmpl: "apiVersion: v1\nkind: ConfigMap\ndata: {a: {{ .Values.missing.field }}}\n",
		file: "charts/c/templates/cm.yaml", line: 3, want: []string{"HelmChart ns/c in apps/c.yaml:7:", "nil pointer evaluating interface {}.field"}},
	{name: "template that does not parse", spec: "  chart: ../charts/c\n", tmpl: "a: 1\nb: {{ if }}\n",
		file: "charts/c/templates/cm.yaml", line: 2, want: []string{"HelmChart ns/c in apps/c.yaml:7:", "missing value for if"}},
	{name: "fail", spec: "  chart: ../charts/c\n", tmpl: "\n{{ fail \"set a password\" }}\n",
		file: "charts/c/templates/cm.yaml", line: 2, want: []string{"set a password"}},
	{name: "output not YAML", spec: "  chart: ../charts/c\n", tmpl: "a: [\n",
		file: "charts/c/templates/cm.yaml", want: []string{"document 1 of the rendered output is not YAML"}},
	{name: "huge list", spec: "  chart: ../charts/c\n", tmpl: "{{ range until 100000000 }}x{{ end }}\n",
		file: "charts/c/templates/cm.yaml", line: 1, want: []string{"untilStep 0 100000000 1: more than 1048576 numbers"}},
	{name: "1 GB string", spec: "  chart: ../charts/c\n", tmpl: "a: {{ repeat 1000000000 \"x\" }}\n",
		file: "charts/c/templates/cm.yaml", line: 1, want: []string{"repeat 1000000000: more than 67108864 bytes"}},
	{name: "printf width", spec: "  chart: ../charts/c\n", tmpl: "a: {{ printf \"%999999999d\" 1 }}\n",
		file: "charts/c/templates/cm.yaml", line: 1, want: []string{"a width or precision past 67108864 bytes"}},
	{name: "printf width argument", spec: "  chart: ../charts/c\n", tmpl: "a: {{ printf \"%*d\" 999999999 1 }}\n",
		file: "charts/c/templates/cm.yaml", line: 1, want: []string{"a width or precision of 999999999"}},
	{name: "long seq", spec: "  chart: ../charts/c\n", tmpl: "a: {{ seq 0 100000000 }}\n",
		file: "charts/c/templates/cm.yaml", line: 1, want: []string{"seq [0 100000000]: more than 1048576 numbers"}},
	{name: "long random string", spec: "  chart: ../charts/c\n", tmpl: "a: {{ randAlpha 1000000000 }}\n",
		file: "charts/c/templates/cm.yaml", line: 1, want: []string{"randAlpha 1000000000: more than 67108864 bytes"}},
	{name: "loops past the output bound", spec: "  chart: ../charts/c\n", lim: Limits{MaxOutputBytes: 1 << 20},
		tmpl: "{{ range until 100000 }}\n{{- range until 100000 }}0123456789{{ end }}{{ end }}\n",
		file: "charts/c/templates/cm.yaml", line: 2, want: []string{"the chart's loops render more than 1048576 bytes"}},
	{name: "loop for ever", spec: "  chart: ../charts/c\n", lim: Limits{Timeout: 300 * time.Millisecond},
		tmpl: "{{ range until 1000000 }}{{ range until 1000000 }}{{ end }}{{ end }}\n",
		file: "apps/c.yaml", line: 7, want: []string{"the chart did not render in time (context deadline exceeded)"}},
	{name: "recursion", spec: "  chart: ../charts/c\n", tmpl: "{{ define \"a\" }}{{ include \"a\" . }}{{ end }}{{ include \"a\" . }}\n",
		file: "charts/c/templates/cm.yaml", want: []string{"nested reference name: a"}},
}

func TestHelmChartBadInput(t *testing.T) {
	for _, tt := range helmBadInputs {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			out := New(tt.lim).Render(t.Context(), badChartTree(tt.spec, tt.tmpl), []string{"apps"})
			if len(out.Docs) != 0 {
				t.Errorf("a unit with a problem rendered %d objects", len(out.Docs))
			}
			if len(out.Errors) != 1 {
				t.Fatalf("want one error, got %v", out.Errors)
			}
			e := out.Errors[0]
			if e.File != tt.file || (tt.line != 0 && e.Line != tt.line) {
				t.Errorf("error at %s:%d, want %s:%d: %v", e.File, e.Line, tt.file, tt.line, e)
			}
			for _, w := range tt.want {
				if !strings.Contains(e.Error(), w) {
					t.Errorf("error %q\nlacks %q", e.Error(), w)
				}
			}
			// A template stopped at its deadline ends at its next step.
			goleak.VerifyNone(t, before)
		})
	}
}

// The step calls change nothing a template writes, trimming included.
func TestHelmInstrumentKeepsOutput(t *testing.T) {
	tests := []struct{ name, tmpl string }{
		{"plain range", "{{ range . }}a{{ . }}{{ end }}"},
		{"trim after range", "{{ range . -}}\n  a {{ . }}\n{{ end }}"},
		{"trim before body action", "{{ range . }}\n  {{- . }}{{ end }}"},
		{"empty body trimmed", "x{{ range . }}\n  {{- end }}y"},
		{"else", "{{ range . }}{{ . }}{{ else }}none{{ end }}"},
		{"nested", "{{ range $a := . }}{{ range $b := $ }}{{ $a }}{{ $b }},{{ end }}{{ end }}"},
		{"define", "{{ define \"d\" -}}\n  d{{ . }}\n{{- end }}{{ range . }}{{ template \"d\" . }}{{ end }}"},
		{"break", "{{ range . }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := instrumentTemplate("t", tt.tmpl)
			if !ok || !strings.Contains(got, stepFunc) {
				t.Fatalf("not instrumented: %q", got)
			}
			g := newRenderGuard(t.Context(), 1<<20)
			if a, b := execTemplate(t, tt.tmpl, g), execTemplate(t, got, g); a != b {
				t.Errorf("instrumented %q writes %q, the template %q", got, b, a)
			}
		})
	}
}

func execTemplate(t *testing.T, text string, g *renderGuard) string {
	t.Helper()
	tmpl, err := template.New("t").Funcs(g.funcs()).Parse(text)
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, []int{1, 2, 3}); err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	return b.String()
}

// A chart file that is a symlink out of the repository is refused by name,
// and nothing of the chart renders.
func TestHelmChartSymlinkOut(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	writeHelmTree(t, repo, badChartTree("  chart: ../charts/c\n", okTemplate))
	if err := os.WriteFile(filepath.Join(root, "secret.yaml"), []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../secret.yaml", filepath.Join(repo, "charts/c/templates/secret.yaml")); err != nil {
		t.Fatal(err)
	}
	out := New(Limits{}).Render(t.Context(), os.DirFS(repo), []string{"apps"})
	if len(out.Docs) != 0 || len(out.Errors) != 1 {
		t.Fatalf("docs %d, errors %v; want one error and nothing rendered", len(out.Docs), out.Errors)
	}
	if e := out.Errors[0].Error(); !strings.Contains(e, "apps/c.yaml:7") ||
		!strings.Contains(e, "symlink charts/c/templates/secret.yaml points to ../../../../secret.yaml, outside the repository") {
		t.Errorf("error %q: want the HelmChart's line and the symlink named", e)
	}
}

func writeHelmTree(t *testing.T, dir string, fsys fstest.MapFS) {
	t.Helper()
	for name, f := range fsys {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Values that match the chart's values.schema.json render.
func TestHelmChartValuesSchemaOK(t *testing.T) {
	out := New(Limits{}).Render(t.Context(), badChartTree("  chart: ../charts/s\n  values: {replicas: 2}\n", okTemplate), []string{"apps"})
	if len(out.Errors) > 0 || len(out.Docs) != 1 {
		t.Fatalf("docs %d, errors %v; want the chart's one object", len(out.Docs), out.Errors)
	}
}

// The bounded functions answer as Helm's do within their bounds.
func TestHelmGuardsAgree(t *testing.T) {
	g := newRenderGuard(t.Context(), 1<<20)
	tests := []struct{ name, tmpl string }{
		{"printf", `{{ printf "%05d|%-4s|%.2f|%x|%%|%*d|%v" 42 "ab" 3.14159 255 6 7 (list 1 2) }}`},
		{"seq", `{{ seq 5 }}|{{ seq 3 -2 }}|{{ seq 0 3 10 }}|{{ seq 10 -3 0 }}|{{ seq }}`},
		{"until", `{{ until 4 }}|{{ until -3 }}|{{ untilStep 1 10 3 }}|{{ untilStep 10 1 -4 }}|{{ untilStep 0 5 0 }}`},
		{"repeat and indent", `{{ repeat 3 "ab" }}|{{ indent 2 "a\nb" }}|{{ nindent 1 "c" }}`},
		{"random length", `{{ randAlpha 7 | len }} {{ randNumeric 3 | len }}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := execWith(t, tt.tmpl, sprigFuncs)
			if got := execWith(t, tt.tmpl, g.funcs()); got != want {
				t.Errorf("bounded: %q, sprig: %q", got, want)
			}
		})
	}
}

func execWith(t *testing.T, text string, funcs template.FuncMap) string {
	t.Helper()
	tmpl, err := template.New("t").Funcs(sprigFuncs).Funcs(funcs).Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, nil); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
