package ui_test

import (
	"bufio"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"html"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	c := e.browser(t)

	req, _ := http.NewRequest(http.MethodGet, e.url+"/ui/nodes", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login?next=%2Fui%2Fnodes" {
		t.Fatalf("signed out: %s to %q, want 303 to the sign-in page", resp.Status, resp.Header.Get("Location"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	if resp := e.signIn(t, c, "not-a-token"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a bad token: %s, want 401", resp.Status)
	}
	resp = e.signIn(t, c, adminToken)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("sign in: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	var token *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "keelson_token" {
			token = ck
		}
	}
	if token == nil || !token.HttpOnly || token.SameSite != http.SameSiteStrictMode || token.Path != "/ui/" {
		t.Fatalf("token cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/", token)
	}
	if strings.Contains(token.Value, adminToken) {
		t.Errorf("cookie holds the token as it is: %q", token.Value)
	}
	if code, body := e.get(t, c, "/ui/"); code != http.StatusOK || !strings.Contains(body, "No sources") || !strings.Contains(body, ">admin<") {
		t.Fatalf("sources after sign in: %d\n%s", code, body)
	}

	// A form another site posts is refused: the view is CSRF-safe.
	forged, _ := http.NewRequest(http.MethodPost, e.url+"/ui/login", strings.NewReader(url.Values{"token": {adminToken}}.Encode()))
	forged.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	forged.Header.Set("Sec-Fetch-Site", "cross-site")
	forged.Header.Set("Origin", "https://evil.example")
	if resp, err := e.browser(t).Do(forged); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site sign in: %v %v, want 403", resp.Status, err)
	}

	// Signing out forgets the token.
	out, _ := http.NewRequest(http.MethodPost, e.url+"/ui/logout", nil)
	out.Header.Set("Sec-Fetch-Site", "same-origin")
	if resp, err := c.Do(out); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %v %v", resp, err)
	}
	if code, _ := e.get(t, c, "/ui/"); code != http.StatusSeeOther {
		t.Errorf("after sign out: %d, want 303 to sign in", code)
	}
	// The API itself is not opened to cookies.
	if code, _ := e.get(t, e.signedIn(t, adminToken), "/api/v1/pods"); code != http.StatusUnauthorized {
		t.Errorf("API with the view's cookie: %d, want 401", code)
	}
}

func TestSourcePage(t *testing.T) {
	e := newEnv(t)
	e.shop(t, 3)
	c := e.signedIn(t, adminToken)

	code, body := e.get(t, c, "/ui/")
	if code != http.StatusOK {
		t.Fatalf("sources: %d\n%s", code, body)
	}
	for _, want := range []string{`href="/ui/sources/apps"`, "Not ready", "Progressing", "111111111111", "Add the shop",
		`href="https://github.com/example/shop/commit/1111111111111111111111111111111111111111"`, "222222222222"} {
		if !strings.Contains(body, want) {
			t.Errorf("sources page lacks %q", want)
		}
	}

	code, body = e.get(t, c, "/ui/sources/apps")
	if code != http.StatusOK {
		t.Fatalf("source: %d\n%s", code, body)
	}
	body = html.UnescapeString(body)
	for _, want := range []string{
		// the error, at its file and line, linked to the file at the attempted revision
		`<a class="at" href="https://github.com/example/shop/blob/2222222222222222222222222222222222222222/deploy/web.yaml#L14" rel="noreferrer">deploy/web.yaml:14</a>: spec.replicas: must be an integer, got "three"`,
		"Three replicas", "Ada <ada@example.com>", "ValidationFailed",
		// the tree: Deployment → ReplicaSet → Pods, Service → EndpointSlice → Pods
		"web-7d9c5b8f6", `href="/ui/pods/shop/web-7d9c5b8f6-a"`, "web-abcde", "3/3 endpoints ready",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("source page lacks %q", want)
		}
	}
	tree := body[strings.Index(body, `id="tree"`):]
	order := regexp.MustCompile(`class="kind">(\w+)<`).FindAllStringSubmatch(tree, -1)
	var kinds []string
	for _, m := range order {
		kinds = append(kinds, m[1])
	}
	want := "Namespace Deployment ReplicaSet Pod Pod Pod Service EndpointSlice Pod Pod Pod"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("tree kinds\n got %s\nwant %s", got, want)
	}

	// The script swaps in the main element alone.
	code, frag := e.get(t, c, "/ui/sources/apps", "X-Keelson-Fragment", "1")
	if code != http.StatusOK || !strings.HasPrefix(frag, "<main") || strings.Contains(frag, "<header") {
		t.Errorf("fragment: %d %.80q", code, frag)
	}
	if code, _ := e.get(t, c, "/ui/sources/nope"); code != http.StatusNotFound {
		t.Errorf("unknown source: %d, want 404", code)
	}
}

func TestGrantsDecide(t *testing.T) {
	e := newEnv(t)
	e.shop(t, 1)
	e.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bank"}})
	other := newPod("bank", "vault")
	e.create(t, other)
	c := e.signedIn(t, viewerToken)

	if code, body := e.get(t, c, "/ui/"); code != http.StatusForbidden || !strings.Contains(body, `cannot list syncs.keelson.dev`) {
		t.Errorf("viewer reads sources: %d\n%s", code, body)
	}
	if code, body := e.get(t, c, "/ui/pods/shop/web-7d9c5b8f6-a"); code != http.StatusOK || !strings.Contains(body, "Pod shop/web-7d9c5b8f6-a") {
		t.Errorf("viewer reads a pod of shop: %d\n%s", code, body)
	}
	if code, _ := e.get(t, c, "/ui/pods/bank/vault"); code != http.StatusForbidden {
		t.Errorf("viewer reads a pod of bank: %d, want 403", code)
	}
}

func newPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "localhost/busybox:latest"}}}}
}

var liveAttr = regexp.MustCompile(`data-live="([^"]+)"`)

func TestLiveFollowsWatches(t *testing.T) {
	e := newEnv(t)
	s := e.shop(t, 1)
	c := e.signedIn(t, adminToken)
	_, body := e.get(t, c, "/ui/sources/apps")
	m := liveAttr.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the source page names no live stream")
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+html.UnescapeString(m[1]), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- ev
			}
		}
		close(events)
	}()
	if ev := <-events; ev != "open" {
		t.Fatalf("first event %q, want open", ev)
	}
	// A new revision applied: the Sync's status changes.
	s.Status.LastAppliedRevision = "3333333333333333333333333333333333333333"
	if err := e.st.UpdateStatus(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	wantChanged(t, events, "the Sync changed")
	// A pod of the tree changes: the page hears of it too.
	var p corev1.Pod
	if err := e.st.Get(t.Context(), "shop", "web-7d9c5b8f6-a", &p); err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodFailed
	if err := e.st.UpdateStatus(t.Context(), &p); err != nil {
		t.Fatal(err)
	}
	wantChanged(t, events, "a pod of the tree changed")
}

func wantChanged(t *testing.T, events <-chan string, after string) {
	t.Helper()
	select {
	case ev := <-events:
		if ev != "changed" {
			t.Fatalf("event %q after %s, want changed", ev, after)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no event after %s", after)
	}
}

func TestLiveRefusesOtherPaths(t *testing.T) {
	e := newEnv(t)
	c := e.signedIn(t, adminToken)
	for _, w := range []string{"/api/v1/secrets?@1", "/api/v1/namespaces/shop/secrets?@1", "/ui/live?@1", "http://evil.example/api/v1/pods?@1",
		"/api/v1/pods?", "/api/../ui/?@1", "/api/v1/namespaces/x/secrets#@1", "/api/v1/namespaces/x/secrets%23@1",
		"/api/v1/secrets%3Fx=@1", "/api/v1/pods/../secrets?@1", "/api/v1/namespaces/shop/pods/web?@1", "/apis/apps/v1/deployments/x/scale?@1"} {
		if code, _ := e.get(t, c, "/ui/live?"+url.Values{"w": {w}}.Encode()); code != http.StatusBadRequest {
			t.Errorf("live of %q: %d, want 400", w, code)
		}
	}
}

func TestSearch(t *testing.T) {
	e := newEnv(t)
	e.shop(t, 2)
	e.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-password", Labels: map[string]string{"app": "web"}},
		StringData: map[string]string{"password": "hunter2"}})
	c := e.signedIn(t, adminToken)
	for q, want := range map[string][]string{
		"web":                                 {`href="/ui/objects/deployments.apps/shop/web"`, `href="/ui/objects/services/shop/web"`, `href="/ui/pods/shop/web-7d9c5b8f6-b"`},
		"app=web":                             {"by label selector", `href="/ui/pods/shop/web-7d9c5b8f6-a"`},
		keelsonv1alpha1.LabelSource + "=apps": {"Namespace", "Deployment"},
		"apps":                                {`href="/ui/sources/apps"`},
	} {
		code, body := e.get(t, c, "/ui/search?"+url.Values{"q": {q}}.Encode())
		if code != http.StatusOK {
			t.Fatalf("search %q: %d\n%s", q, code, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("search %q lacks %q", q, w)
			}
		}
		if strings.Contains(body, "web-password") || strings.Contains(body, "hunter2") {
			t.Errorf("search %q shows a secret", q)
		}
	}
	if code, body := e.get(t, c, "/ui/search?q="+url.QueryEscape("app in (")); code != http.StatusBadRequest || !strings.Contains(body, "is not a label selector") {
		t.Errorf("bad selector: %d\n%s", code, body)
	}
}

// TestLiveEndsWithItsWatches: when one watch of a page ends (here, one the
// token may not make), the stream says resync and ends, the others with it.
func TestLiveEndsWithItsWatches(t *testing.T) {
	e := newEnv(t)
	e.shop(t, 1)
	c := e.signedIn(t, viewerToken)
	var p corev1.Pod
	if err := e.st.Get(t.Context(), "shop", "web-7d9c5b8f6-a", &p); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"w": {"/api/v1/namespaces/shop/pods?@" + p.ResourceVersion, "/api/v1/namespaces/bank/pods?@" + p.ResourceVersion}}
	done := make(chan string, 1)
	go func() {
		_, body := e.get(t, c, "/ui/live?"+q.Encode())
		done <- body
	}()
	select {
	case body := <-done:
		if !strings.Contains(body, "event: open") || !strings.Contains(body, "event: resync") {
			t.Errorf("stream %q, want open then resync", body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end when one of its watches did")
	}
}

// TestNoPathOutsideObjects: a path that names no object reads nothing.
func TestNoPathOutsideObjects(t *testing.T) {
	e := newEnv(t)
	e.shop(t, 1)
	c := e.signedIn(t, adminToken)
	for _, path := range []string{"/ui/pods/%2e%2e/%2e%2e", "/ui/pods/shop/%2e%2e", "/ui/sources/%2e%2e", "/ui/pods/Shop/x",
		"/ui/pods/shop/web%3Fwatch=1", "/ui/pods/%2e%2e/%2e%2e/log"} {
		if code, body := e.get(t, c, path); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404\n%.300s", path, code, body)
		}
	}
}
