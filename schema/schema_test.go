package schema

import (
	"strings"
	"testing"
)

func testSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validate runs one file through the schema and returns its objects and its
// errors formatted as people see them.
func validate(t *testing.T, name, src string) ([]*Object, []string) {
	t.Helper()
	objs, errs := testSchema(t).ValidateFile(name, []byte(src))
	errs.Sort()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	return objs, msgs
}

// TestGeneratedTypesAcceptInlinedFields guards against the cue get go trap
// with k8s.io/api v0.37 (json:"" embedded-field tags): apiVersion and kind
// (TypeMeta), probe handlers (ProbeHandler) and volume sources (VolumeSource)
// are inlined Go structs and must be accepted.
func TestGeneratedTypesAcceptInlinedFields(t *testing.T) {
	src := `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx:1.27
    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
    readinessProbe:
      tcpSocket: {port: http}
    startupProbe:
      exec: {command: ["true"]}
    lifecycle:
      preStop:
        exec: {command: [sleep, "1"]}
    ports:
    - {name: http, containerPort: 8080}
  volumes:
  - name: cfg
    configMap: {name: web}
  - name: tmp
    emptyDir: {}
  - name: creds
    secret: {secretName: web}
  - name: data
    persistentVolumeClaim: {claimName: data}
  - name: host
    hostPath: {path: /var/log}
`
	objs, errs := validate(t, "pod.yaml", src)
	if len(errs) > 0 || len(objs) != 1 {
		t.Fatalf("want the pod accepted, got errors:\n%s", strings.Join(errs, "\n"))
	}
}

func TestErrorsNameFileLineFieldAndObject(t *testing.T) {
	src := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: three
  replcas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: web
        imagee: nginx
        ports:
        - containerPort: 70000
          protocol: TCPX
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: Bad_Name
  namespace: prod
`
	_, errs := validate(t, "apps/web.yaml", src)
	want := []string{
		`apps/web.yaml:6:13: Deployment default/web: spec.replicas: must be an integer, got "three"`,
		`apps/web.yaml:7:3: Deployment default/web: spec.replcas: field not allowed (no such field in Deployment)`,
		`apps/web.yaml:15:9: Deployment default/web: spec.template.spec.containers[0].image: required field is missing`,
		`apps/web.yaml:16:9: Deployment default/web: spec.template.spec.containers[0].imagee: field not allowed (no such field in Deployment)`,
		`apps/web.yaml:18:26: Deployment default/web: spec.template.spec.containers[0].ports[0].containerPort: must be a port number from 1 to 65535`,
		`apps/web.yaml:19:21: Deployment default/web: spec.template.spec.containers[0].ports[0].protocol: must be TCP, UDP or SCTP`,
		`apps/web.yaml:24:9: ConfigMap prod/Bad_Name: metadata.name: must be a DNS subdomain: at most 253 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit`,
	}
	if got := strings.Join(errs, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestErrorCarriesDocumentIndex(t *testing.T) {
	src := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: 1}\n"
	_, errs := testSchema(t).ValidateFile("cm.yaml", []byte(src))
	if len(errs) != 1 {
		t.Fatalf("want one error, got %v", errs)
	}
	e := errs[0]
	if e.Doc != 2 || e.Line != 8 || e.Kind != "ConfigMap" || e.Name != "b" || e.Path != "data.k" {
		t.Errorf("got %+v", *e)
	}
}

func TestUnsupportedKindNamesSupportedKinds(t *testing.T) {
	_, errs := validate(t, "x.yaml", "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {name: r}\n")
	if len(errs) != 1 || !strings.Contains(errs[0], "unsupported kind CertificateSigningRequest") || !strings.Contains(errs[0], "apps/v1/Deployment") {
		t.Errorf("got %q", errs)
	}
	_, errs = validate(t, "x.yaml", "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: r}\n")
	if len(errs) != 1 || !strings.Contains(errs[0], "Deployment is supported as apiVersion apps/v1, not extensions/v1beta1") {
		t.Errorf("got %q", errs)
	}
}

func TestInputFormats(t *testing.T) {
	tests := []struct {
		name, file, src string
		want            []string // kind/name of the accepted objects
	}{
		{"multi-document yaml", "a.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# second\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b}\n", []string{"ConfigMap/a", "ServiceAccount/b"}},
		{"json", "a.json", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}`, []string{"ConfigMap/a"}},
		{"list", "a.yaml", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b}, stringData: {k: v}}\n", []string{"ConfigMap/a", "Secret/b"}},
		{"cue object", "a.cue", "apiVersion: \"v1\"\nkind: \"ConfigMap\"\nmetadata: name: \"a\"\ndata: k: \"v\"\n", []string{"ConfigMap/a"}},
		{"cue with imports", "a.cue", "import \"strings\"\n_n: \"WEB\"\napiVersion: \"v1\"\nkind: \"ConfigMap\"\nmetadata: name: strings.ToLower(_n)\n", []string{"ConfigMap/web"}},
		{"cue list", "a.cue", "_app: \"web\"\n[for n in [\"a\", \"b\"] {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: {name: n, labels: app: _app}}]\n", []string{"ConfigMap/a", "ConfigMap/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := validate(t, tt.file, tt.src)
			if len(errs) > 0 {
				t.Fatalf("errors: %s", strings.Join(errs, "\n"))
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.Kind+"/"+o.Name)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("objects %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequiredFields(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"deployment without template", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n",
			"x.yaml:4:1: Deployment default/web: spec.template: required field is missing"},
		{"cronjob without jobTemplate", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: web}\nspec:\n  schedule: '@daily'\n",
			"x.yaml:4:1: CronJob default/web: spec.jobTemplate: required field is missing"},
		{"pod without containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {}\n",
			"x.yaml:4:1: Pod default/web: spec.containers: required field is missing"},
		{"pod with no containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: []}\n",
			"x.yaml:4:20: Pod default/web: spec.containers: must not be empty"},
		{"object without name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n",
			"x.yaml:3:1: ConfigMap: metadata.name: required field is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := validate(t, "x.yaml", tt.src)
			if len(errs) != 1 || !strings.HasPrefix(errs[0], tt.want) {
				t.Errorf("got %q\nwant one error starting %q", errs, tt.want)
			}
		})
	}
}

func TestCrossFieldRulesReportedWithFieldErrors(t *testing.T) {
	src := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replcas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: web, image: nginx}]}\n"
	_, errs := validate(t, "x.yaml", src)
	want := []string{
		"x.yaml:5:3: Deployment default/web: spec.replcas: field not allowed (no such field in Deployment)",
		`x.yaml:6:3: Deployment default/web: spec.selector: selector "app=web" does not match the template's labels "app=api": set spec.template.metadata.labels to match`,
	}
	if strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}
