package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func planDeployment(name string, replicas int, image, cpu string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: shop
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: %[1]s
        image: %[3]s
        resources:
          requests: {cpu: %[4]s, memory: 32Mi}
`, name, replicas, image, cpu)
}

// planRepoDir makes a repository whose main holds base and whose branch pr
// holds head on top of it, with the git binary.
func planRepoDir(t testing.TB, base, head map[string]string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	gitRun(t, "", "init", "-q", "-b", "main", repo)
	for name, content := range base {
		commit(t, repo, name, content, "base: "+name)
	}
	gitRun(t, repo, "checkout", "-q", "-b", "pr")
	for name, content := range head {
		commit(t, repo, name, content, "head: "+name)
	}
	return repo
}

// keelsonPlan runs the binary and returns its standard output and exit code.
func keelsonPlan(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"plan"}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("keelson plan: %v", err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func TestPlanExitCodes(t *testing.T) {
	web := planDeployment("web", 3, "localhost/web:1.4", "100m")
	repo := planRepoDir(t, map[string]string{"deploy/web.yaml": web, "README.md": "hi\n"},
		map[string]string{"README.md": "hello\n"})
	if out, stderr, code := keelsonPlan(t, "--repo", repo, "--base", "main", "--head", "pr", "--path", "deploy"); code != 0 || !strings.Contains(out, "0 to create, 0 to change, 0 to delete") {
		t.Fatalf("no change: exit %d\n%s%s", code, out, stderr)
	}
	commit(t, repo, "deploy/web.yaml", strings.Replace(web, "web:1.4", "web:1.5", 1), "new image")
	out, _, code := keelsonPlan(t, "--repo", repo, "--base", "main", "--head", "pr", "--path", "deploy", "--color", "always")
	if code != 1 || !strings.Contains(out, "rolling update of 3 pods, image localhost/web:1.4 → localhost/web:1.5") || !strings.Contains(out, "\x1b[") {
		t.Fatalf("a change: exit %d, want 1, a rolling update and colour:\n%s", code, out)
	}
	commit(t, repo, "deploy/web.yaml", strings.Replace(web, "replicas: 3", "replicas: three", 1), "broken")
	out, _, code = keelsonPlan(t, "--repo", repo, "--base", "main", "--head", "pr", "--path", "deploy", "--format", "json")
	var p gitsync.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if code != 2 || len(p.Errors) == 0 || p.Errors[0].File != "deploy/web.yaml" || p.Errors[0].Line != 7 {
		t.Fatalf("an invalid head: exit %d, want 2 and deploy/web.yaml:7:\n%s", code, out)
	}
	for _, args := range [][]string{
		{"--repo", repo},
		{"--repo", repo, "--base", "main", "--format", "yaml"},
		{"--repo", repo, "--base", "no-such-branch"},
		{"--repo", repo, "--base", "main", "--no-such-flag"},
	} {
		if _, stderr, code := keelsonPlan(t, args...); code != 2 || stderr == "" {
			t.Errorf("keelson plan %v: exit %d, want 2 with a message: %q", args, code, stderr)
		}
	}
}

// startPlanAPI serves the read-only API over a store on a private etcd,
// with a reader's token that may not see secret values.
func startPlanAPI(t testing.TB) (*store.Store, string) {
	t.Helper()
	e, err := store.StartEmbedded(t.Context(), t.TempDir(), store.EmbeddedConfig{ClientURL: etcdtest.FreeURL(t), PeerURL: etcdtest.FreeURL(t)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	st := etcdtest.NewStoreAt(t, e.ClientURLs())
	tokens, err := apiserver.ParseTokens(strings.NewReader("reader-token,reader,uid-reader,\"readers\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	// The reader reads everything, secret values aside, by a grant of the
	// authorization file.
	grants := &apiserver.Grants{Grants: []apiserver.Grant{{Users: []string{"reader"}, Namespaces: []string{"*"}}}}
	srv := apiserver.New(apiserver.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Store: st, Tokens: tokens, Grants: grants})
	l, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return st, "http://" + l.Addr().String()
}

func planNode(name, cpu string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

func planPod(ns, name, nodeName, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "localhost/busy:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// The server mode reads the cluster through the API: what it would do to
// each object, and whether the new pods fit on the nodes. The cluster holds
// main as the sync wrote it, plus nodes and pods of its own.
func TestPlanAgainstServer(t *testing.T) {
	st, url := startPlanAPI(t)
	rsYAML := func(n int) string {
		return fmt.Sprintf("apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: x, namespace: shop}\nspec:\n  replicas: %d\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n      containers: [{name: x, image: \"localhost/x:1\"}]\n", n)
	}
	secretYAML := func(pw string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\nstringData:\n  password: " + pw + "\n"
	}
	repo := planRepoDir(t, map[string]string{
		"deploy/rs.yaml":     rsYAML(2),
		"deploy/old.yaml":    "apiVersion: v1\nkind: Namespace\nmetadata: {name: old}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: old}\n",
		"deploy/secret.yaml": secretYAML("short-pw"),
	}, map[string]string{
		"deploy/rs.yaml":     rsYAML(5),
		"deploy/api.yaml":    planDeployment("api", 6, "localhost/api:2", "200m"),
		"deploy/secret.yaml": secretYAML("a-much-longer-password"),
	})
	gitRun(t, repo, "rm", "-q", "deploy/old.yaml")
	gitRun(t, repo, "commit", "-q", "-m", "no more old")
	syncPlanMain(t, st, repo)
	for _, o := range []store.Object{
		planNode("node-a", "1"), planNode("node-b", "1"),
		planPod("kube", "a-1", "node-a", "500m"), planPod("kube", "b-1", "node-b", "700m"),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "old", Name: "b"}},
		planPod("old", "c", "", "0"),
	} {
		if err := st.Create(t.Context(), o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
	out, stderr, code := keelsonPlan(t, "--server", url, "--token", "reader-token", "--data-dir", t.TempDir(),
		"--repo", repo, "--head", "pr", "--path", "deploy", "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", code, out, stderr)
	}
	var p gitsync.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	effects := map[string]string{}
	for _, o := range p.Objects {
		effects[string(o.Action)+" "+o.Kind+" "+o.Namespace+"/"+o.Name] = strings.Join(o.Effects, "; ")
	}
	for obj, want := range map[string]string{
		"update ReplicaSet shop/x":   "scale 2 → 5",
		"delete Namespace /old":      "deleted, with its 3 objects",
		"create Deployment shop/api": "creates 6 pods (localhost/api:2)",
		"delete ConfigMap old/a":     "",
		"update Secret shop/db":      "",
	} {
		if got, ok := effects[obj]; !ok || got != want {
			t.Errorf("%s: %q, want %q (all: %q)", obj, got, want, effects)
		}
	}
	if p.Created != 1 || p.Changed != 2 || p.Deleted != 2 || p.Unchanged != 0 {
		t.Errorf("created %d changed %d deleted %d unchanged %d, want 1 2 2 0", p.Created, p.Changed, p.Deleted, p.Unchanged)
	}
	// 6 api pods of 200m and 3 more x pods that request nothing; 0.5 CPU is
	// free on node-a and 0.3 on node-b: two api pods fit on a, one on b.
	if s := p.Scheduling; s == nil || s.NewPods != 9 || s.CPU != "1.2" || s.FreeCPU != "0.8" || s.Nodes != 2 || s.Pending != 3 {
		t.Errorf("scheduling %+v, want 9 new pods, 1.2 CPU, 0.8 free on 2 nodes, 3 pending", p.Scheduling)
	}
	if !strings.Contains(out, `"changed": [
          "password"`) || strings.Contains(out, "a-much-longer-password") || strings.Contains(out, "short-pw") {
		t.Errorf("secret: the key must be named and no value shown:\n%s", out)
	}
	text, _, _ := keelsonPlan(t, "--server", url, "--token", "reader-token", "--data-dir", t.TempDir(),
		"--repo", repo, "--head", "pr", "--path", "deploy")
	t.Logf("text output:\n%s", text)
	if !strings.Contains(text, "9 new pods request 1.2 CPU") || !strings.Contains(text, "3 pods would stay Pending") {
		t.Errorf("text output lacks the scheduling sentence:\n%s", text)
	}
}

// An object another sync owns, and one a controller made, cannot be taken
// over: errors, exit 2.
func TestPlanAgainstServerOwners(t *testing.T) {
	st, url := startPlanAPI(t)
	repo := planRepoDir(t, map[string]string{"README.md": "deploy\n"}, map[string]string{
		"deploy/shared.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared, namespace: shop}\ndata: {k: v}\n",
		"deploy/pod.yaml":    "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop}\nspec:\n  containers: [{name: c, image: \"localhost/c:1\"}]\n",
		"deploy/free.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: free, namespace: shop}\ndata: {k: v}\n",
	})
	for _, o := range []store.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shared", Labels: map[string]string{gitsync.LabelSource: "other"},
			Annotations: map[string]string{gitsync.AnnotationOrigin: "cm.yaml:3"}}, Data: map[string]string{"k": "v"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web", APIVersion: "apps/v1", UID: "u1"}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "localhost/c:1"}}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "free"}, Data: map[string]string{"k": "v"}},
	} {
		if err := st.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, code := keelsonPlan(t, "--server", url, "--token", "reader-token", "--data-dir", t.TempDir(),
		"--repo", repo, "--head", "pr", "--path", "deploy", "--format", "markdown")
	if code != 2 {
		t.Fatalf("exit %d, want 2:\n%s%s", code, out, stderr)
	}
	for _, want := range []string{
		"**error** `ConfigMap shop/shared`: owned by sync \"other\" (from its file cm.yaml:3)",
		"**error** `Pod shop/web-1`: made and managed by ReplicaSet web",
		"<code>~ ConfigMap shop/free</code>: adopted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the markdown lacks %q:\n%s", want, out)
		}
	}
}

// syncMain applies the repository's main to the store as keelson server
// would.
func syncPlanMain(t testing.TB, st *store.Store, repo string) {
	t.Helper()
	sch, err := schema.Default()
	if err != nil {
		t.Fatal(err)
	}
	s := &gitsync.Syncer{Name: "default", Store: st, Schema: sch, Path: "deploy", Prune: true}
	src := gitsync.NewLocalGit(repo, "main")
	rev, err := src.Resolve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := src.Files(t.Context(), rev)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Apply(t.Context(), rev, fsys); err != nil || res.Created != 4 {
		t.Fatalf("sync main: %v, %+v", err, res)
	}
}
