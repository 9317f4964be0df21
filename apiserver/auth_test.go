package apiserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/apiserver"
)

func TestPeoplesWritesGet405NamingTheSource(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web",
		Labels:      map[string]string{"keelson.dev/source": "main"},
		Annotations: map[string]string{"keelson.dev/origin": "deploy/web.yaml:3"}}}
	if err := ts.st.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	cs := ts.client(t, "admin-token")
	cms := cs.CoreV1().ConfigMaps("default")
	_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "new"}}, metav1.CreateOptions{})
	if !apierrors.IsMethodNotSupported(err) || !strings.Contains(err.Error(), "GitOps") {
		t.Fatalf("create: %v, want 405 saying keelson is GitOps", err)
	}
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	if !apierrors.IsMethodNotSupported(err) {
		t.Fatalf("update: %v, want 405", err)
	}
	// Someone who may not read the object learns nothing of it, not even
	// whether it exists.
	err = ts.client(t, "reader-token").CoreV1().ConfigMaps("default").Delete(ctx, "web", metav1.DeleteOptions{})
	if !apierrors.IsMethodNotSupported(err) || strings.Contains(err.Error(), `sync "main"`) || strings.Contains(err.Error(), "deploy/web.yaml") {
		t.Fatalf("delete by a user who may not read it: %v, want 405 naming nothing", err)
	}
	err = cms.Delete(ctx, "web", metav1.DeleteOptions{})
	if !apierrors.IsMethodNotSupported(err) || !strings.Contains(err.Error(), `sync "main"`) || !strings.Contains(err.Error(), "deploy/web.yaml:3") {
		t.Fatalf("delete: %v, want 405 naming sync main and deploy/web.yaml:3", err)
	}
	_, err = cms.Patch(ctx, "web", "application/merge-patch+json", []byte(`{"data":{"a":"b"}}`), metav1.PatchOptions{})
	if !apierrors.IsMethodNotSupported(err) {
		t.Fatalf("patch: %v, want 405", err)
	}
	if err := ts.st.Get(ctx, "default", "web", cm); err != nil || cm.Data != nil {
		t.Fatalf("config map changed: %v %v", err, cm.Data)
	}
}

func TestAuthentication(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	for _, token := range []string{"", "wrong-token"} {
		_, err := ts.client(t, token).CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("list with token %q: %v, want 401", token, err)
		}
	}
	for _, path := range []string{"/healthz", "/version"} {
		resp, err := http.Get(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s without a token: %s, want 200", path, resp.Status)
		}
	}
	// --anonymous-read makes requests without a token system:anonymous,
	// who reads what RBAC grants it, as Kubernetes' --anonymous-auth.
	anon := newTestServer(t, func(c *configT) { c.AnonymousRead = true })
	if _, err := anon.client(t, "").CoreV1().Pods("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("anonymous read with --anonymous-read and no binding: %v, want 403", err)
	}
	if err := anon.st.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "anonymous-view"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: apiserver.GroupUnauthenticated}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "anonymous reads pods once view is bound to system:unauthenticated", func() error {
		_, err := anon.client(t, "").CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		return err
	})
	_, err := anon.client(t, "").CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	if !apierrors.IsMethodNotSupported(err) {
		t.Fatalf("anonymous write: %v, want 405", err)
	}
}

func TestReadGrants(t *testing.T) {
	ts := newTestServer(t, withGrants(t))
	ctx := t.Context()
	for _, ns := range []string{"team-a", "team-b"} {
		if err := ts.st.Create(ctx, pod(ns, "p", nil, "", "")); err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}, Data: map[string][]byte{"password": []byte("hunter2")}}
		if err := ts.st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	alice := ts.client(t, "alice-token")
	if _, err := alice.CoreV1().Pods("team-a").Get(ctx, "p", metav1.GetOptions{}); err != nil {
		t.Fatalf("alice reads team-a: %v", err)
	}
	forbidden := map[string]error{}
	_, forbidden["pod in team-b"] = alice.CoreV1().Pods("team-b").Get(ctx, "p", metav1.GetOptions{})
	_, forbidden["pods everywhere"] = alice.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	_, forbidden["nodes"] = alice.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	_, forbidden["watch team-b"] = alice.CoreV1().Pods("team-b").Watch(ctx, metav1.ListOptions{})
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("alice, %s: %v, want 403", what, err)
		}
	}
	secretChecks := []struct {
		token string
		want  string
	}{
		{"reader-token", ""},       // every namespace, no secret grant
		{"alice-token", ""},        // no secret grant either
		{"admin-token", "hunter2"}, // system:masters
		{"node1-token", "hunter2"}, // an agent runs pods that use it
	}
	for _, c := range secretChecks {
		s, err := ts.client(t, c.token).CoreV1().Secrets("team-a").Get(ctx, "s", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s reads the secret: %v", c.token, err)
		}
		if got := string(s.Data["password"]); got != c.want {
			t.Errorf("%s sees password %q, want %q", c.token, got, c.want)
		}
		if _, ok := s.Data["password"]; !ok {
			t.Errorf("%s does not see the key", c.token)
		}
		if c.want == "" {
			var sizes map[string]int
			if err := json.Unmarshal([]byte(s.Annotations["keelson.dev/redacted-value-sizes"]), &sizes); err != nil || sizes["password"] != 7 {
				t.Errorf("%s: redacted sizes %q, want password: 7", c.token, s.Annotations["keelson.dev/redacted-value-sizes"])
			}
		}
	}
	list, err := ts.client(t, "reader-token").CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if len(s.Data["password"]) != 0 {
			t.Errorf("reader lists secret %s/%s with its value", s.Namespace, s.Name)
		}
	}
}

func TestNodeRestriction(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	node := ts.client(t, "node1-token")
	// Its own Node: create, update, status.
	n1, err := node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create own node: %v", err)
	}
	n1.Labels = map[string]string{"zone": "a"}
	if n1, err = node.CoreV1().Nodes().Update(ctx, n1, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update own node: %v", err)
	}
	n1.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if _, err = node.CoreV1().Nodes().UpdateStatus(ctx, n1, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update own node status: %v", err)
	}
	// Its lease.
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-node-lease", Name: "n1"}}
	if lease, err = node.CoordinationV1().Leases("kube-node-lease").Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create own lease: %v", err)
	}
	if _, err = node.CoordinationV1().Leases("kube-node-lease").Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update own lease: %v", err)
	}
	// Events.
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e1"}, Reason: "Started", Source: corev1.EventSource{Host: "n1"}, Count: 1}
	if ev, err = node.CoreV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create event: %v", err)
	}
	// Its own events' counts (client-go's aggregation of repeats), not
	// another node's.
	ev.Count = 2
	if _, err = node.CoreV1().Events("default").Update(ctx, ev, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update own event: %v", err)
	}
	theirs := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e2"}, Reason: "Started", Source: corev1.EventSource{Host: "n2"}, Count: 1}
	if err := ts.st.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	theirs.Source.Host = "n1"
	if _, err = node.CoreV1().Events("default").Update(ctx, theirs, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("update of another node's event: %v, want 403", err)
	}
	// Pods bound to it: status only, and deletion.
	mine, other := pod("default", "mine", nil, "n1", ""), pod("default", "other", nil, "n2", "")
	for _, p := range []*corev1.Pod{mine, other} {
		if err := ts.st.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	upd := mine.DeepCopy()
	upd.Status.Phase = corev1.PodRunning
	upd.Spec.Containers[0].Image = "evil"
	got, err := node.CoreV1().Pods("default").UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status of own pod: %v", err)
	}
	if got.Status.Phase != corev1.PodRunning || got.Spec.Containers[0].Image != "localhost/web:1" {
		t.Fatalf("after status update: phase %s image %s, want Running and the spec unchanged", got.Status.Phase, got.Spec.Containers[0].Image)
	}
	// The local-path volumes it provisions: create, then update (its
	// finalizer dropped once the directory is gone).
	localPV := func(name, on string) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{keelsonv1alpha1.AnnotationLocalPathNode: on}}}
	}
	pv, err := node.CoreV1().PersistentVolumes().Create(ctx, localPV("pvc-1", "n1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create own local-path volume: %v", err)
	}
	if _, err = node.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update own local-path volume: %v", err)
	}
	if err := ts.st.Create(ctx, localPV("pvc-2", "n2")); err != nil {
		t.Fatal(err)
	}
	others := &corev1.PersistentVolume{}
	if err := ts.st.Get(ctx, "", "pvc-2", others); err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]error{}
	_, forbidden["create another node's volume"] = node.CoreV1().PersistentVolumes().Create(ctx, localPV("pvc-3", "n2"), metav1.CreateOptions{})
	_, forbidden["create a volume of no node"] = node.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-4"}}, metav1.CreateOptions{})
	_, forbidden["update another node's volume"] = node.CoreV1().PersistentVolumes().Update(ctx, others, metav1.UpdateOptions{})
	stolen := others.DeepCopy()
	stolen.Annotations[keelsonv1alpha1.AnnotationLocalPathNode] = "n1"
	_, forbidden["take another node's volume"] = node.CoreV1().PersistentVolumes().Update(ctx, stolen, metav1.UpdateOptions{})
	forbidden["delete own volume"] = node.CoreV1().PersistentVolumes().Delete(ctx, "pvc-1", metav1.DeleteOptions{})
	_, forbidden["create other node"] = node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{})
	n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2", ResourceVersion: "1"}}
	_, forbidden["update other node"] = node.CoreV1().Nodes().Update(ctx, n2, metav1.UpdateOptions{})
	_, forbidden["other node status"] = node.CoreV1().Nodes().UpdateStatus(ctx, n2, metav1.UpdateOptions{})
	_, forbidden["other lease"] = node.CoordinationV1().Leases("kube-node-lease").Create(ctx,
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-node-lease", Name: "n2"}}, metav1.CreateOptions{})
	_, forbidden["pod spec"] = node.CoreV1().Pods("default").Update(ctx, upd, metav1.UpdateOptions{})
	o := other.DeepCopy()
	o.Status.Phase = corev1.PodFailed
	_, forbidden["other pod status"] = node.CoreV1().Pods("default").UpdateStatus(ctx, o, metav1.UpdateOptions{})
	forbidden["delete other pod"] = node.CoreV1().Pods("default").Delete(ctx, "other", metav1.DeleteOptions{})
	_, forbidden["create pod"] = node.CoreV1().Pods("default").Create(ctx, pod("default", "x", nil, "n1", ""), metav1.CreateOptions{})
	_, forbidden["config map"] = node.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{})
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("node n1, %s: %v, want 403", what, err)
		}
	}
	if err := node.CoreV1().Pods("default").Delete(ctx, "mine", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete own stopped pod: %v", err)
	}
	if err := ts.st.Get(ctx, "default", "mine", &corev1.Pod{}); !apierrors.IsNotFound(statusOf(err)) {
		t.Fatalf("own pod after delete: %v, want gone", err)
	}
}

// /metrics is for system:masters and those RBAC lets get it, as
// Kubernetes' system:monitoring.
func TestMetricsNeedsMonitoring(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	get := func(token string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("admin-token"); code != http.StatusOK {
		t.Errorf("admin: %d, want 200", code)
	}
	if code := get("reader-token"); code != http.StatusForbidden {
		t.Errorf("reader without a binding: %d, want 403", code)
	}
	if err := ts.st.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader-monitors"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:monitoring"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "reader"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reader scrapes /metrics once bound to system:monitoring", func() error {
		if code := get("reader-token"); code != http.StatusOK {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
}
