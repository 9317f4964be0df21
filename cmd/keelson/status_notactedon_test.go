package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestStatusKindsNotActedOn: a server syncing a repository with a
// PodTemplate and a NetworkPolicy beside a ConfigMap applies them,
// and `keelson status` says that keelson does not act on them: in the Ready
// message, a "Not acted on" line, the health (Unsupported, never Healthy)
// and the list of objects that are not healthy.
func TestStatusKindsNotActedOn(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gitRun(t, "", "init", "-q", "-b", "main", repo)
	commit(t, repo, "deploy/app.yaml", `apiVersion: v1
kind: ConfigMap
metadata: {name: app}
data: {greeting: hello}
---
apiVersion: v1
kind: PodTemplate
metadata: {name: web}
template:
  spec:
    containers:
    - {name: web, image: "localhost/web:1"}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`, "the app, its pod template and its network policy")
	data := filepath.Join(dir, "server")
	api := freeAddr(t)
	p := start(t, "server", "--data-dir", data, "--listen", api, "--repo", repo, "--path", "deploy", "--sync-interval", "1s",
		"--etcd-listen-client", etcdtest.FreeURL(t), "--etcd-listen-peer", etcdtest.FreeURL(t))
	defer p.stop(t)
	readyz(t, p, api, 200)
	var out string
	eventuallyOut(t, "`keelson status` to show the PodTemplate and the NetworkPolicy as not acted on", func() (string, bool) {
		b, err := exec.Command(binary, "status", "--data-dir", data).CombinedOutput()
		out = string(b)
		return out, err == nil && strings.Contains(out, "Unsupported")
	})
	// Columns are aligned with spaces that depend on every row: compare
	// with runs of spaces made one.
	flat := strings.Join(strings.FieldsFunc(out, func(r rune) bool { return r == ' ' }), " ")
	for _, want := range []string{
		"Ready True Succeeded applied revision ", ": 2 objects keelson does not act on yet: NetworkPolicy default/web, PodTemplate default/web\n",
		"Not acted on 2 keelson stores these but does not act on their kinds yet: NetworkPolicy default/web, PodTemplate default/web\n",
		"Healthy False Unsupported NetworkPolicy default/web: keelson stores NetworkPolicies but does not enforce them yet: all pod traffic stays allowed\n",
		"Health Unsupported NetworkPolicy default/web: keelson stores NetworkPolicies but does not enforce them yet: all pod traffic stays allowed\n",
		"\n PodTemplate default/web: Unsupported: keelson stores PodTemplates but makes no pods from them, as Kubernetes makes none: they are kept for the tools that read them\n",
		"\n NetworkPolicy default/web: Unsupported: keelson stores NetworkPolicies but does not enforce them yet: all pod traffic stays allowed\n",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("keelson status lacks %q:\n%s", want, out)
		}
	}
	t.Logf("keelson status:\n%s", out)
	if strings.Contains(out, "ConfigMap default/app") {
		t.Errorf("keelson status lists the ConfigMap, which keelson acts on:\n%s", out)
	}
}

func TestPrintSyncNotActedOn(t *testing.T) {
	ref := func(apiVersion, kind, ns, name string) keelsonv1alpha1.ObjectRef {
		return keelsonv1alpha1.ObjectRef{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name}
	}
	tests := []struct {
		name string
		inv  []keelsonv1alpha1.ObjectRef
		want string // "" when no line is wanted
	}{
		{name: "only kinds acted on", inv: []keelsonv1alpha1.ObjectRef{ref("v1", "ConfigMap", "shop", "cfg"), ref("apps/v1", "Deployment", "shop", "web")}},
		{name: "a pod template and a cluster-scoped class", inv: []keelsonv1alpha1.ObjectRef{ref("v1", "PodTemplate", "shop", "web"),
			ref("v1", "ConfigMap", "shop", "cfg"), ref("storage.k8s.io/v1", "StorageClass", "", "fast")},
			want: "  Not acted on  2  keelson stores these but does not act on their kinds yet: PodTemplate shop/web, StorageClass fast\n"},
		{name: "an autoscaler is acted on", inv: []keelsonv1alpha1.ObjectRef{ref("autoscaling/v2", "HorizontalPodAutoscaler", "shop", "web")}},
		{name: "many, counted past five", inv: []keelsonv1alpha1.ObjectRef{ref("networking.k8s.io/v1", "NetworkPolicy", "a", "1"), ref("networking.k8s.io/v1", "NetworkPolicy", "a", "2"),
			ref("networking.k8s.io/v1", "NetworkPolicy", "a", "3"), ref("networking.k8s.io/v1", "NetworkPolicy", "a", "4"), ref("networking.k8s.io/v1", "NetworkPolicy", "a", "5"), ref("networking.k8s.io/v1", "NetworkPolicy", "a", "6"),
			ref("networking.k8s.io/v1", "NetworkPolicy", "a", "7")},
			want: "  Not acted on  7  keelson stores these but does not act on their kinds yet: NetworkPolicy a/1, NetworkPolicy a/2, NetworkPolicy a/3, NetworkPolicy a/4, NetworkPolicy a/5 and 2 more\n"},
		{name: "a bad apiVersion is skipped", inv: []keelsonv1alpha1.ObjectRef{ref("a/b/c", "NetworkPolicy", "a", "1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &keelsonv1alpha1.Sync{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Status: keelsonv1alpha1.SyncStatus{Inventory: tt.inv}}
			var b bytes.Buffer
			printSync(&b, s, time.Now())
			line := ""
			for _, l := range strings.SplitAfter(b.String(), "\n") {
				if strings.HasPrefix(l, "  Not acted on") {
					line = l
				}
			}
			if line != tt.want {
				t.Errorf("line %q, want %q; output:\n%s", line, tt.want, b.String())
			}
		})
	}
}
