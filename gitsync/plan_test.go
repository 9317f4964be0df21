package gitsync

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updatePlanGolden = flag.Bool("update", false, "rewrite the golden files of plan outputs")

const webV1 = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: localhost/web:1.4
        resources:
          requests: {cpu: 200m, memory: 64Mi}
`

func secretYAML(name, user, password string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\n  namespace: shop\ndata:\n" +
		"  user: " + base64.StdEncoding.EncodeToString([]byte(user)) + "\n" +
		"  password: " + base64.StdEncoding.EncodeToString([]byte(password)) + "\n"
}

// planRepo commits base on main and head on branch pr, as a pull request
// does, and plans pr against main.
func planRepo(t *testing.T, base, head map[string]string) *Plan {
	t.Helper()
	r := newRepo(t)
	b := r.commit(base)
	r.setBranch("main", b)
	h := r.commit(head)
	r.setBranch("pr", h)
	r.setBranch("main", b)
	p, err := PlanGit(t.Context(), r.dir, "main", "pr", PlanOptions{Schema: testSchema(t), Path: "./deploy/"})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

func findObject(t *testing.T, p *Plan, title string) *PlannedObject {
	t.Helper()
	for _, o := range p.Objects {
		if o.Title() == title {
			return o
		}
	}
	t.Fatalf("no %s in the plan: %+v", title, p.Objects)
	return nil
}

func hasRisk(p *Plan, level RiskLevel, code, object string) bool {
	for _, r := range p.Risks {
		if r.Level == level && r.Code == code && r.Object == object {
			return true
		}
	}
	return false
}

func TestPlanCreateChangeDelete(t *testing.T) {
	base := map[string]string{
		"deploy/ns.yaml":     namespace("shop"),
		"deploy/web.yaml":    webV1,
		"deploy/config.yaml": configMap("cfg", "a") + "---\n" + configMap("old", "x"),
		"deploy/keep.yaml":   configMap("keep", "k"),
		"README.md":          "not a manifest under deploy/\n",
	}
	head := map[string]string{
		"deploy/web.yaml":    strings.Replace(webV1, "web:1.4", "web:1.5", 1),
		"deploy/config.yaml": configMap("cfg", "a"),
		"deploy/api.yaml":    deployment("shop", "api", 2),
	}
	p := planRepo(t, base, head)
	// Unchanged: cfg in a changed file, and the namespace and keep in the
	// two files not touched (counted, not decoded).
	if p.Created != 1 || p.Changed != 1 || p.Deleted != 1 || p.Unchanged != 3 || p.UntouchedFiles != 2 || p.UntouchedObjects != 2 {
		t.Fatalf("created %d changed %d deleted %d unchanged %d untouched files %d objects %d, want 1 1 1 3 2 2",
			p.Created, p.Changed, p.Deleted, p.Unchanged, p.UntouchedFiles, p.UntouchedObjects)
	}
	if len(p.Errors) > 0 || p.Invalid() {
		t.Fatalf("errors: %v, risks %+v", p.Errors, p.Risks)
	}
	web := findObject(t, p, "Deployment shop/web")
	want := "rolling update of 3 pods, image localhost/web:1.4 → localhost/web:1.5, at most 1 extra and 0 unavailable at a time"
	if web.Action != Update || len(web.Effects) != 1 || web.Effects[0] != want {
		t.Errorf("web: %s %q, want %q", web.Action, web.Effects, want)
	}
	if !strings.Contains(web.Diff, "-      - image: localhost/web:1.4\n+      - image: localhost/web:1.5\n") {
		t.Errorf("web diff:\n%s", web.Diff)
	}
	if strings.Contains(web.Diff, AnnotationOrigin) || strings.Contains(web.Diff, AnnotationRevision) {
		t.Errorf("the diff shows keelson's annotations:\n%s", web.Diff)
	}
	if api := findObject(t, p, "Deployment shop/api"); api.Action != Create || api.Origin != "deploy/api.yaml:1" || api.Effects[0] != "creates 2 pods (localhost/api:1)" {
		t.Errorf("api: %+v", api)
	}
	if old := findObject(t, p, "ConfigMap default/old"); old.Action != Delete || old.Origin != "deploy/config.yaml:8" {
		t.Errorf("old: %+v", old)
	}
	// Kubernetes' order: the ConfigMap's deletion after the workloads.
	if p.Objects[len(p.Objects)-1].Name != "old" {
		t.Errorf("order: %v", p.Objects)
	}
}

// Defaults are filled in before comparing, so dropping a field that held
// a non-default value shows the default it falls back to.
func TestPlanShowsDefaults(t *testing.T) {
	noReplicas := strings.Replace(webV1, "  replicas: 3\n", "", 1)
	p := planRepo(t, map[string]string{"deploy/web.yaml": webV1}, map[string]string{"deploy/web.yaml": noReplicas})
	web := findObject(t, p, "Deployment shop/web")
	if !strings.Contains(web.Diff, "-  replicas: 3\n+  replicas: 1\n") || web.Effects[0] != "scale 3 → 1" {
		t.Fatalf("diff:\n%s\neffects %q", web.Diff, web.Effects)
	}
	if !strings.Contains(web.Diff, "progressDeadlineSeconds: 600") {
		t.Errorf("the diff lacks a defaulted field as context:\n%s", web.Diff)
	}
}

func TestPlanInvalidHead(t *testing.T) {
	bad := strings.Replace(webV1, "replicas: 3", "replicas: three", 1)
	p := planRepo(t, map[string]string{"deploy/web.yaml": webV1}, map[string]string{"deploy/web.yaml": bad})
	if !p.Invalid() || len(p.Errors) == 0 {
		t.Fatalf("no errors for an invalid head: %+v", p)
	}
	if got := p.Errors[0].Error(); !strings.HasPrefix(got, "deploy/web.yaml:7:") || !strings.Contains(got, "spec.replicas") {
		t.Fatalf("error %q, want deploy/web.yaml:7: … spec.replicas", got)
	}
}

// A head with nothing under the path would delete everything: a problem.
func TestPlanEmptyHead(t *testing.T) {
	p := planRepo(t, map[string]string{"deploy/a.yaml": configMap("a", "1")}, map[string]string{"deploy/a.yaml": "", "other/a.yaml": configMap("a", "1")})
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Error(), "no manifests under deploy") || p.Deleted != 1 {
		t.Fatalf("errors %v, %d deleted", p.Errors, p.Deleted)
	}
}

// An object added in a changed file that an untouched file already defines
// is a duplicate, though the untouched file is not otherwise read.
func TestPlanDuplicateInUntouchedFile(t *testing.T) {
	base := map[string]string{"deploy/a.yaml": configMap("shared", "1"), "deploy/b.yaml": configMap("other", "2")}
	head := map[string]string{"deploy/b.yaml": configMap("other", "2") + "---\n" + configMap("shared", "3")}
	p := planRepo(t, base, head)
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Error(), "defined twice") || !strings.Contains(p.Errors[0].Error(), "deploy/a.yaml:1") {
		t.Fatalf("errors %v, want a duplicate with deploy/a.yaml:1", p.Errors)
	}
}

func TestPlanRisks(t *testing.T) {
	sts := func(service string) string {
		return `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: ` + service + `
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "localhost/db:15"}]
`
	}
	pvc := "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: shop}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"
	base := map[string]string{
		"deploy/ns.yaml":  namespace("shop") + "---\n" + namespace("old"),
		"deploy/pvc.yaml": pvc,
		"deploy/db.yaml":  sts("db"),
		"deploy/web.yaml": webV1,
	}
	head := map[string]string{
		"deploy/ns.yaml":    namespace("shop"),
		"deploy/pvc.yaml":   "",
		"deploy/db.yaml":    sts("database"),
		"deploy/web.yaml":   strings.NewReplacer("replicas: 3", "replicas: 0", "localhost/web:1.4", "localhost/web").Replace(webV1),
		"deploy/job.yaml":   deployment("shop", "latest", 1) + "---\n" + strings.Replace(deployment("shop", "batch", 1), "localhost/batch:1", "localhost/batch:latest", 1),
		"deploy/drain.yaml": "apiVersion: keelson.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: maintenance}\nspec: {nodeNames: [node-1], drain: true}\n",
	}
	p := planRepo(t, base, head)
	for _, want := range []struct {
		level        RiskLevel
		code, object string
	}{
		{RiskError, "immutable-field", "StatefulSet shop/db"},
		{RiskWarning, "delete", "Namespace old"},
		{RiskWarning, "data-loss", "PersistentVolumeClaim shop/data"},
		{RiskWarning, "scale-to-zero", "Deployment shop/web"},
		{RiskWarning, "image-tag", "Deployment shop/web"},
		{RiskWarning, "image-tag", "Deployment shop/batch"},
		{RiskWarning, "drain", "NodePolicy maintenance"},
	} {
		if !hasRisk(p, want.level, want.code, want.object) {
			t.Errorf("no %s %s for %s in %+v", want.level, want.code, want.object, p.Risks)
		}
	}
	if hasRisk(p, RiskWarning, "image-tag", "Deployment shop/latest") {
		t.Errorf("an image tagged 1 flagged: %+v", p.Risks)
	}
	if !p.Invalid() || p.Risks[0].Level != RiskError || !strings.Contains(p.Risks[0].Message, "spec.serviceName") {
		t.Errorf("the immutable field is not the first risk, or the plan is valid: %+v", p.Risks)
	}
}

// A StatefulSet whose claims go when it scales down (whenScaled: Delete)
// or is deleted (whenDeleted: Delete) is flagged as a risk to data; one
// that keeps them is not.
func TestPlanStatefulSetClaimRisks(t *testing.T) {
	sts := func(name string, replicas int, policy string) string {
		return `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ` + name + `, namespace: shop}
spec:
  serviceName: ` + name + `
  replicas: ` + fmt.Sprint(replicas) + `
  selector: {matchLabels: {app: ` + name + `}}
  persistentVolumeClaimRetentionPolicy: ` + policy + `
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      containers: [{name: db, image: "localhost/db:15"}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`
	}
	drop := "{whenDeleted: Delete, whenScaled: Delete}"
	keep := "{whenDeleted: Retain, whenScaled: Retain}"
	base := map[string]string{
		"deploy/ns.yaml":   namespace("shop"),
		"deploy/a.yaml":    sts("a", 3, drop),
		"deploy/b.yaml":    sts("b", 3, keep),
		"deploy/gone.yaml": sts("gone", 1, drop),
		"deploy/kept.yaml": sts("kept", 1, keep),
	}
	head := map[string]string{
		"deploy/ns.yaml":   namespace("shop"),
		"deploy/a.yaml":    sts("a", 1, drop),
		"deploy/b.yaml":    sts("b", 1, keep),
		"deploy/gone.yaml": "",
		"deploy/kept.yaml": "",
	}
	p := planRepo(t, base, head)
	if !hasRisk(p, RiskWarning, "data-loss", "StatefulSet shop/a") || hasRisk(p, RiskWarning, "data-loss", "StatefulSet shop/b") {
		t.Errorf("data-loss risks: %+v", p.Risks)
	}
	for _, r := range p.Risks {
		if r.Code == "delete" && r.Object == "StatefulSet shop/gone" && !strings.Contains(r.Message, "deletes their claims") ||
			r.Code == "delete" && r.Object == "StatefulSet shop/kept" && !strings.Contains(r.Message, "their claims stay") {
			t.Errorf("risk %+v", r)
		}
	}
	if a := findObject(t, p, "StatefulSet shop/a"); !slices.Contains(a.Effects, "scale 3 → 1: removes a-2, a-1, highest first; their claims are deleted with them") {
		t.Errorf("effects of a: %q", a.Effects)
	}
}

// The values of a Secret appear in no format, only which keys changed.
func TestPlanSecretValuesNeverShown(t *testing.T) {
	base := map[string]string{"deploy/s.yaml": secretYAML("db", "admin", "old-password-1")}
	head := map[string]string{"deploy/s.yaml": secretYAML("db", "admin", "new-password-2") + "stringData:\n  token: token-value-3\n"}
	p := planRepo(t, base, head)
	s := findObject(t, p, "Secret shop/db")
	if k := s.SecretKeys; k == nil || strings.Join(k.Changed, ",") != "password" || strings.Join(k.Added, ",") != "token" || len(k.Removed) != 0 {
		t.Fatalf("secret keys %+v", s.SecretKeys)
	}
	if !hasRisk(p, RiskWarning, "plain-secret", "Secret shop/db") {
		t.Errorf("no plain-secret risk: %+v", p.Risks)
	}
	for name, out := range renderAll(t, p) {
		for _, v := range []string{"admin", "old-password-1", "new-password-2", "token-value-3"} {
			for _, enc := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
				if strings.Contains(out, enc) {
					t.Errorf("%s output holds secret value %q:\n%s", name, enc, out)
				}
			}
		}
		if !strings.Contains(out, "password") || !strings.Contains(out, "token") {
			t.Errorf("%s output does not name the changed keys:\n%s", name, out)
		}
	}
}

// A problem with a Secret's value does not quote the value.
func TestPlanInvalidSecretValueNotShown(t *testing.T) {
	bad := "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\nstringData:\n  password: 98765432\n"
	p := planRepo(t, map[string]string{"deploy/s.yaml": secretYAML("db", "admin", "pw")}, map[string]string{"deploy/s.yaml": bad})
	if len(p.Errors) != 1 || !strings.HasPrefix(p.Errors[0].Error(), "deploy/s.yaml:5:") {
		t.Fatalf("errors %v, want one at deploy/s.yaml:5", p.Errors)
	}
	for name, out := range renderAll(t, p) {
		if strings.Contains(out, "98765432") {
			t.Errorf("%s output quotes the secret value:\n%s", name, out)
		}
	}
}

func renderAll(t *testing.T, p *Plan) map[string]string {
	t.Helper()
	var text, color, md, js bytes.Buffer
	for _, err := range []error{p.WriteText(&text, false), p.WriteText(&color, true), p.WriteMarkdown(&md), p.WriteJSON(&js)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return map[string]string{"text": text.String(), "color": color.String(), "markdown": md.String(), "json": js.String()}
}

// The markdown and JSON outputs of one plan, against golden files
// (go test -run PlanGolden -update rewrites them).
func TestPlanGolden(t *testing.T) {
	base := map[string]string{
		"deploy/ns.yaml":     namespace("shop") + "---\n" + namespace("old"),
		"deploy/web.yaml":    webV1,
		"deploy/config.yaml": configMap("cfg", "a"),
		"deploy/s.yaml":      secretYAML("db", "admin", "hunter2"),
	}
	head := map[string]string{
		"deploy/ns.yaml":     namespace("shop"),
		"deploy/web.yaml":    strings.Replace(webV1, "web:1.4", "web:1.5", 1),
		"deploy/config.yaml": configMap("cfg", "b"),
		"deploy/s.yaml":      secretYAML("db", "admin", "hunter3"),
		"deploy/api.yaml":    deployment("shop", "api", 2),
	}
	p := planRepo(t, base, head)
	out := renderAll(t, p)
	for _, g := range []struct{ file, got string }{{"plan.md", out["markdown"]}, {"plan.json", out["json"]}, {"plan.txt", out["text"]}} {
		path := filepath.Join("testdata", g.file)
		if *updatePlanGolden {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(g.got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		if g.got != string(want) {
			t.Errorf("%s differs from the golden file (run with -update if the change is meant):\n%s", g.file, unifiedDiff(want, []byte(g.got)))
		}
	}
}

func TestPlanImmutableFields(t *testing.T) {
	svc := func(ip string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  clusterIP: " + ip + "\n  selector: {app: web}\n  ports: [{port: 80}]\n"
	}
	cm := func(immutable bool, v string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\nimmutable: %t\ndata: {k: %s}\n", immutable, v)
	}
	pvc := func(mode, size string) string {
		return "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: shop}\nspec:\n  accessModes: [" + mode + "]\n  resources: {requests: {storage: " + size + "}}\n"
	}
	job := func(image string) string {
		return "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once, namespace: shop}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: j, image: \"" + image + "\"}]\n"
	}
	cases := []struct {
		name      string
		old, head string
		field     string // "" when the change is allowed
	}{
		{"deployment selector", webV1, strings.ReplaceAll(webV1, "{app: web}", "{app: web2}"), "spec.selector"},
		{"deployment replicas", webV1, strings.Replace(webV1, "replicas: 3", "replicas: 4", 1), ""},
		{"service clusterIP", svc("10.43.0.10"), svc("10.43.0.11"), "spec.clusterIP"},
		{"immutable ConfigMap", cm(true, "a"), cm(true, "b"), "data (the ConfigMap is immutable: true)"},
		{"mutable ConfigMap", cm(false, "a"), cm(false, "b"), ""},
		{"PVC access modes", pvc("ReadWriteOnce", "1Gi"), pvc("ReadWriteMany", "1Gi"), "spec (all but resources)"},
		{"PVC size", pvc("ReadWriteOnce", "1Gi"), pvc("ReadWriteOnce", "2Gi"), ""},
		{"job template", job("localhost/j:1"), job("localhost/j:2"), "spec.template"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planRepo(t, map[string]string{"deploy/x.yaml": tc.old}, map[string]string{"deploy/x.yaml": tc.head})
			if len(p.Errors) > 0 || p.Changed != 1 {
				t.Fatalf("errors %v, %d changed", p.Errors, p.Changed)
			}
			var got []string
			for _, r := range p.Risks {
				if r.Code == "immutable-field" {
					got = append(got, r.Message)
				}
			}
			switch {
			case tc.field == "" && len(got) > 0:
				t.Errorf("an allowed change flagged: %q", got)
			case tc.field != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.field+" cannot change")):
				t.Errorf("risks %q, want one for %s", got, tc.field)
			case tc.field != "" && !p.Invalid():
				t.Errorf("a change of %s leaves the plan valid", tc.field)
			}
		})
	}
}

// A .keelsonignore change reads every file, since files it stops ignoring
// are created though their blobs did not change; a symlink leads to the
// changed file it points at.
func TestPlanIgnoreFileAndSymlink(t *testing.T) {
	r := newRepo(t)
	base := r.commit(map[string]string{
		"deploy/.keelsonignore": "extra/\n",
		"deploy/extra/a.yaml":   configMap("a", "1"),
		"shared/b.yaml":         configMap("b", "1"),
	})
	if err := os.Symlink("../shared/b.yaml", filepath.Join(r.dir, "deploy", "b.yaml")); err != nil {
		t.Fatal(err)
	}
	base = r.commit(nil)
	head := r.commit(map[string]string{"deploy/.keelsonignore": "# nothing\n", "shared/b.yaml": configMap("b", "2")})
	p, err := PlanGit(t.Context(), r.dir, base, head, PlanOptions{Schema: testSchema(t), Path: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Errors) > 0 || p.Created != 1 || p.Changed != 1 {
		t.Fatalf("errors %v, created %d changed %d, want 1 and 1: %+v", p.Errors, p.Created, p.Changed, p.Objects)
	}
	if a := findObject(t, p, "ConfigMap default/a"); a.Action != Create {
		t.Errorf("a: %s", a.Action)
	}
	if b := findObject(t, p, "ConfigMap default/b"); b.Action != Update || !strings.Contains(b.Diff, `+  key: "2"`) {
		t.Errorf("b: %s\n%s", b.Action, b.Diff)
	}
	// Without an ignore file changing, only the symlink's target changes.
	next := r.commit(map[string]string{"shared/b.yaml": configMap("b", "3")})
	p, err = PlanGit(t.Context(), r.dir, head, next, PlanOptions{Schema: testSchema(t), Path: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Errors) > 0 || p.Changed != 1 || p.Created+p.Deleted != 0 || p.UntouchedFiles != 1 {
		t.Fatalf("errors %v, %d changed, %d created, %d deleted, %d untouched; want only b changed, a untouched", p.Errors, p.Changed, p.Created, p.Deleted, p.UntouchedFiles)
	}
	if b := findObject(t, p, "ConfigMap default/b"); !strings.Contains(b.Diff, `+  key: "3"`) || b.Origin != "deploy/b.yaml:1" {
		t.Errorf("b through its symlink: %s\n%s", b.Origin, b.Diff)
	}
}

// A large plan keeps its markdown to the first objects, to fit a comment.
func TestPlanMarkdownBounded(t *testing.T) {
	p := &Plan{Head: PlanRevision{Commit: "abc"}, Base: &PlanRevision{Commit: "def"}}
	for i := range markdownMaxObjects + 5 {
		p.Objects = append(p.Objects, &PlannedObject{Action: Create, Kind: "ConfigMap", Namespace: "default", Name: fmt.Sprintf("cm-%03d", i)})
	}
	var b bytes.Buffer
	if err := p.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "<details>"); n != markdownMaxObjects || !strings.Contains(b.String(), "… and 5 more objects") {
		t.Fatalf("%d sections, want %d and a note of 5 more:\n%s", n, markdownMaxObjects, b.String()[b.Len()-300:])
	}
}

func TestCountDocuments(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       int
	}{
		{"a.yaml", "", 0},
		{"a.yaml", "# only a comment\n", 0},
		{"a.yaml", configMap("a", "1"), 1},
		{"a.yaml", "---\n" + configMap("a", "1") + "---\n" + configMap("b", "2") + "---\n# trailing comment\n", 2},
		{"a.yaml", configMap("a", "1") + "...\n---\n" + configMap("b", "2"), 2},
		{"a.yaml", "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n--- # c\n", 1},
		{"a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  script: |\n    echo a\n    ---\n    echo b\n", 1},
		{"a.json", `{"apiVersion":"v1"}`, 1},
		{"a.json", "  \n", 0},
	} {
		if got := countDocuments(tc.name, []byte(tc.data)); got != tc.want {
			t.Errorf("countDocuments(%s, %q) = %d, want %d", tc.name, tc.data, got, tc.want)
		}
	}
}
