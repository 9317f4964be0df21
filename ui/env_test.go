package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
	"github.com/keelson/keelson/ui"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

const (
	adminToken  = "admin-token-0123456789"
	viewerToken = "viewer-token-0123456789"
)

// env is an API server over a real etcd with the view mounted, served over
// HTTP by httptest.
type env struct {
	st  *store.Store
	url string // http://host:port of the API
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st := etcdtest.NewStore(t)
	tokens, err := apiserver.ParseTokens(strings.NewReader(adminToken + ",admin,1,system:masters\n" + viewerToken + ",viewer,2\n"))
	if err != nil {
		t.Fatal(err)
	}
	grants := &apiserver.Grants{Grants: []apiserver.Grant{{Users: []string{"viewer"}, Namespaces: []string{"shop"}}}}
	log := slog.New(slog.DiscardHandler)
	api := apiserver.New(apiserver.Config{Addr: "127.0.0.1:0", Logger: log, Store: st, Tokens: tokens, Grants: grants,
		UI: func(h http.Handler) http.Handler { return ui.New(ui.Config{API: h, Logger: log}) }})
	l, err := api.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &env{st: st, url: "http://" + l.Addr().String()}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so a test sees where the view sends it.
func (e *env) browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn posts token to the sign-in form as a browser on the view's origin.
func (e *env) signIn(t testing.TB, c *http.Client, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/ui/login", strings.NewReader(url.Values{"token": {token}, "next": {"/ui/"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (e *env) signedIn(t testing.TB, token string) *http.Client {
	t.Helper()
	c := e.browser(t)
	if resp := e.signIn(t, c, token); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %s", resp.Status)
	}
	return c
}

// get returns the status and body of path.
func (e *env) get(t testing.TB, c *http.Client, path string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (e *env) create(t testing.TB, objs ...store.Object) {
	t.Helper()
	for _, o := range objs {
		if err := e.st.Create(t.Context(), o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
}

// shop is a source's objects as controllers leave them: a Deployment with
// a ReplicaSet and pods, a Service with an EndpointSlice, a Sync whose
// inventory names the two and whose last attempt failed at a file:line.
func (e *env) shop(t testing.TB, pods int) *keelsonv1alpha1.Sync {
	t.Helper()
	ctx := t.Context()
	src := map[string]string{keelsonv1alpha1.LabelSource: "apps"}
	e.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: src}})
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Labels: src},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(pods)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "localhost/busybox:latest"}}}}}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Labels: src},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	e.create(t, dep, svc)
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-7d9c5b8f6",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: dep.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(pods)), Selector: dep.Spec.Selector, Template: dep.Spec.Template}}
	e.create(t, rs)
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-abcde",
		Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}, AddressType: discoveryv1.AddressTypeIPv4}
	for i := range pods {
		p := etcdtest.SamplePod("shop", "web-7d9c5b8f6-"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}
		e.create(t, p)
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.42.0.9"},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: p.Name}})
	}
	e.create(t, slice)
	s := &keelsonv1alpha1.Sync{ObjectMeta: metav1.ObjectMeta{Name: "apps"},
		Spec: keelsonv1alpha1.SyncSpec{URL: "https://github.com/example/shop.git", Ref: "main", Path: "deploy"}}
	e.create(t, s)
	now := metav1.Now()
	s.Status = keelsonv1alpha1.SyncStatus{
		Conditions: []metav1.Condition{{Type: keelsonv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "ValidationFailed",
			Message: "revision 2222 failed", LastTransitionTime: now}},
		LastAppliedRevision:   "1111111111111111111111111111111111111111",
		LastAttemptedRevision: "2222222222222222222222222222222222222222",
		LastApplied:           &keelsonv1alpha1.Commit{Revision: "1111111111111111111111111111111111111111", FromGit: true, Message: "Add the shop", Author: "Ada <ada@example.com>", Time: &now},
		LastAttempted:         &keelsonv1alpha1.Commit{Revision: "2222222222222222222222222222222222222222", FromGit: true, Message: "Three replicas", Author: "Ada <ada@example.com>", Time: &now},
		Errors:                []string{"deploy/web.yaml:14:7: spec.replicas: must be an integer, got \"three\""},
		Inventory: []keelsonv1alpha1.ObjectRef{{APIVersion: "v1", Kind: "Namespace", Name: "shop"},
			{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"}, {APIVersion: "v1", Kind: "Service", Namespace: "shop", Name: "web"}},
		History: []keelsonv1alpha1.SyncAttempt{{Revision: "2222222222222222222222222222222222222222", Result: "ValidationFailed",
			Message: "deploy/web.yaml:14:7: spec.replicas: must be an integer, got \"three\"", StartTime: now},
			{Revision: "1111111111111111111111111111111111111111", Result: "Succeeded", Created: 3, StartTime: now}},
		Health: &keelsonv1alpha1.SyncHealth{Status: "Progressing", Message: "rolling out"},
	}
	if err := e.st.UpdateStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func etcdNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("24Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("24Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		}}
}
