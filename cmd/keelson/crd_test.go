package main

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/store/etcdtest"
)

const e2eCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
`

func e2eWidget(name, size string) string {
	return "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: " + name + "\nspec:\n  size: " + size + "\n"
}

// TestCustomResourcesThroughServer: a CRD and two of its objects in one
// commit are synced by `keelson server` and served at once, through
// client-go's dynamic client and kubectl's printing of the Table with the
// CRD's printer columns; a later commit of a third object lands beside them.
func TestCustomResourcesThroughServer(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gitRun(t, "", "init", "-q", "-b", "main", repo)
	commit(t, repo, "deploy/crd.yaml", e2eCRD, "the CRD")
	commit(t, repo, "deploy/widgets.yaml", e2eWidget("small", "1")+"---\n"+e2eWidget("large", "42"), "two widgets")
	config := filepath.Join(dir, "keelson.yaml")
	writeFile(t, config, "apiVersion: keelson.dev/v1alpha1\nkind: ServerConfig\nsources:\n- name: apps\n  url: repo\n  ref: main\n  path: deploy\n  interval: 1s\n")
	data := filepath.Join(dir, "data")
	api := freeAddr(t)
	server := start(t, "server", "--data-dir", data, "--listen", api, "--config", config,
		"--etcd-listen-client", etcdtest.FreeURL(t), "--etcd-listen-peer", etcdtest.FreeURL(t))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server output:\n%s", server.out)
		}
	})
	readyz(t, server, api, http.StatusOK)

	get := func(args ...string) (string, bool) {
		out, err := exec.Command(binary, append(append([]string{"get"}, args...), "--data-dir", data)...).CombinedOutput()
		return string(out), err == nil
	}
	eventuallyOut(t, "keelson get widgets shows both with their size", func() (string, bool) {
		out, ok := get("widgets", "-n", "default")
		return out, ok && strings.Contains(out, "SIZE") && fields(out, "large") == "large 42" && fields(out, "small") == "small 1"
	})

	kc, err := exec.Command(binary, "kubeconfig", "--server", "https://"+api, "--data-dir", data).Output()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	widgets := dyn.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}).Namespace("default")
	u, err := widgets.Get(t.Context(), "large", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if size, _, _ := unstructured.NestedInt64(u.Object, "spec", "size"); size != 42 || u.GetLabels()["keelson.dev/source"] != "apps" {
		t.Fatalf("widget large through the dynamic client: %v", u.Object)
	}

	commit(t, repo, "deploy/more.yaml", e2eWidget("third", "3"), "a third widget")
	eventuallyOut(t, "the third widget served", func() (string, bool) {
		l, err := widgets.List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return err.Error(), false
		}
		return "", len(l.Items) == 3
	})
	if out, ok := get("wd", "third", "-n", "default"); !ok || fields(out, "third") != "third 3" {
		t.Errorf("keelson get wd third:\n%s", out)
	}
	if code := server.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
}

// fields is the line of out that starts with name, its first two fields.
func fields(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == name {
			return f[0] + " " + f[1]
		}
	}
	return ""
}
