package main

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/apiserver"
)

// inClusterRef is the image of testdata/incluster, built by the test.
const inClusterRef = "localhost/incluster:test"

const inClusterApp = `apiVersion: v1
kind: Namespace
metadata: {name: watch}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: lister, namespace: watch}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: watch}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
---
apiVersion: v1
kind: Pod
metadata: {name: lister, namespace: watch}
spec:
  serviceAccountName: lister
  containers:
  - {name: lister, image: "` + inClusterRef + `", imagePullPolicy: Never}
`

const inClusterBinding = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: lister-reads-pods, namespace: watch}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: lister, namespace: watch}
`

// TestInClusterAccessOnContainerd: a pod runs a program built on
// client-go's in-cluster config, unchanged, against keelson: it reaches the
// API as the kubernetes service with the token and CA the agent mounted,
// is refused until a RoleBinding in Git lets its ServiceAccount list the
// pods of its namespace, lists them, and is refused again once a commit
// removes the binding. kubectl auth can-i and whoami answer for the
// ServiceAccount's token and for the admin.
func TestInClusterAccessOnContainerd(t *testing.T) {
	u := newUpFixture(t)
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed (apt-get install kubectl): %v", err)
	}
	image := buildInClusterImage(t, u.dir)
	commit(t, u.repo, "app/app.yaml", inClusterApp, "a pod that lists pods, and a role that would let it")
	// The API on every address, so that pods reach it as the kubernetes
	// service.
	port := strings.Split(freeAddr(t), ":")[1]
	up := u.start(t, u.repo, "--path", "app", "--import-image", image, "--listen", "0.0.0.0:"+port)
	u.waitPods(t, up, 1)
	logs := func(want string) {
		t.Helper()
		eventuallyOut(t, "the lister's log to say "+want, func() (string, bool) {
			out, err := u.keelson("logs", "-n", "watch", "lister")
			return out, err == nil && strings.Contains(lastLine(out, "list"), want)
		})
	}
	logs("list failed: 403 Forbidden")

	commit(t, u.repo, "app/binding.yaml", inClusterBinding, "the lister may list pods")
	logs("listed 1 pods of watch")

	// kubectl, with the pod's own token, as the pod's program would.
	var tokens []string
	filepath.WalkDir(u.data, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "token" && strings.HasPrefix(filepath.Base(filepath.Dir(path)), "kube-api-access-") {
			tokens = append(tokens, path)
		}
		return nil
	})
	if len(tokens) != 1 {
		t.Fatalf("the pod's token on the node: %v", tokens)
	}
	token, err := os.ReadFile(tokens[0])
	if err != nil {
		t.Fatal(err)
	}
	ca := apiserver.TLSFilesIn(u.data).CACert
	server := "https://127.0.0.1:" + port
	asPod := func(args ...string) string {
		out, _ := exec.Command(kubectl, append([]string{"--server", server, "--certificate-authority", ca, "--token", string(token)}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	asAdmin := func(args ...string) string {
		out, _ := exec.Command(kubectl, append([]string{"--kubeconfig", adminKubeconfig(u.data)}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for _, c := range []struct {
		who  func(...string) string
		args []string
		want string
	}{
		{asPod, []string{"auth", "can-i", "list", "pods", "-n", "watch"}, "yes"},
		{asPod, []string{"auth", "can-i", "list", "pods", "-n", "default"}, "no"},
		{asPod, []string{"auth", "can-i", "get", "secrets", "-n", "watch"}, "no"},
		{asPod, []string{"auth", "can-i", "delete", "pods", "-n", "watch"}, "no"},
		{asAdmin, []string{"auth", "can-i", "list", "secrets", "-A"}, "yes"},
		{asAdmin, []string{"auth", "can-i", "create", "deployments", "-n", "watch"}, "no"},
	} {
		// kubectl adds the reason after " - " when the server gives one.
		if got := c.who(c.args...); got != c.want && !strings.HasPrefix(got, c.want+" - ") {
			t.Errorf("kubectl %s: %q, want %s", strings.Join(c.args, " "), got, c.want)
		}
	}
	if got := asPod("auth", "whoami"); !strings.Contains(got, "system:serviceaccount:watch:lister") || !strings.Contains(got, "system:serviceaccounts:watch") {
		t.Errorf("kubectl auth whoami with the pod's token:\n%s", got)
	}
	if got := asPod("get", "pods", "-n", "watch", "-o", "name"); got != "pod/lister" {
		t.Errorf("kubectl get pods with the pod's token: %q", got)
	}

	gitRun(t, u.repo, "rm", "-q", "app/binding.yaml")
	gitRun(t, u.repo, "commit", "-q", "-m", "the lister may no longer list pods")
	logs("list failed: 403 Forbidden")
	if got := asPod("auth", "can-i", "list", "pods", "-n", "watch"); !strings.HasPrefix(got, "no - RBAC: ServiceAccount watch/lister may not list pods") {
		t.Errorf("kubectl auth can-i list pods after the binding went: %q", got)
	}
}

// lastLine is the last line of out that contains word.
func lastLine(out, word string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], word) {
			return lines[i]
		}
	}
	return ""
}

// buildInClusterImage builds testdata/incluster, static, into a one-layer
// image archive, and returns the archive's path.
func buildInClusterImage(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "incluster")
	build := exec.Command("go", "build", "-o", bin, "./testdata/incluster")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/incluster: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "incluster", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(b))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "incluster.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ociarchive.Write(f, inClusterRef, layer.Bytes(), ocispec.ImageConfig{Entrypoint: []string{"/incluster"}}); err != nil {
		t.Fatal(err)
	}
	return archive
}
