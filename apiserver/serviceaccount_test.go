package apiserver_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/apiserver"
	"github.com/keelson/keelson/internal/satoken"
)

const testIssuer = "https://kubernetes.default.svc.cluster.local"

// syncBuffer is a log the test reads while the server writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// withServiceAccounts has the server sign tokens with a key of its own and
// log at Info into log.
func withServiceAccounts(t testing.TB, log *syncBuffer) (option, *ecdsa.PrivateKey) {
	key, err := satoken.LoadOrCreateKey(filepath.Join(t.TempDir(), "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	kid := satoken.KeyID(&key.PublicKey)
	return func(c *apiserver.Config) {
		c.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c.ServiceAccounts = &apiserver.ServiceAccountConfig{
			Signer: satoken.NewSigner(key, testIssuer), Issuer: testIssuer, Audiences: []string{testIssuer},
			Keys: func(_ context.Context, id string) (*ecdsa.PublicKey, error) {
				if id != kid {
					return nil, satoken.ErrUnknownKey
				}
				return &key.PublicKey, nil
			},
		}
	}, key
}

// TestServiceAccountTokens: an agent gets a token for a pod bound to it;
// the token reads what RBAC in the store grants its ServiceAccount, and
// stops working when the grant, or the pod, goes. Forged, expired and
// foreign tokens are refused with the reason in the log, never to the
// client.
func TestServiceAccountTokens(t *testing.T) {
	var log syncBuffer
	opt, key := withServiceAccounts(t, &log)
	ts := newTestServer(t, opt)
	ctx := t.Context()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	p := pod("shop", "web-1", nil, "n1", corev1.PodRunning)
	p.Spec.ServiceAccountName = "web"
	other := pod("shop", "db-1", nil, "n2", corev1.PodRunning)
	other.Spec.ServiceAccountName = "web"
	for _, err := range []error{ts.st.Create(ctx, sa), ts.st.Create(ctx, p), ts.st.Create(ctx, other),
		ts.st.Create(ctx, pod("shop", "api-1", nil, "n1", corev1.PodRunning)),
		ts.st.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Data: map[string][]byte{"pw": []byte("x")}})} {
		if err != nil {
			t.Fatal(err)
		}
	}
	request := func(token, saName string, ref *authenticationv1.BoundObjectReference, exp int64) (*authenticationv1.TokenRequest, error) {
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: ref, ExpirationSeconds: &exp}}
		return ts.client(t, token).CoreV1().ServiceAccounts("shop").CreateToken(ctx, saName, tr, metav1.CreateOptions{})
	}
	bound := func(p *corev1.Pod) *authenticationv1.BoundObjectReference {
		return &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}
	}

	// Who may ask, and for what.
	refused := map[string]struct {
		token, sa string
		ref       *authenticationv1.BoundObjectReference
		exp       int64
		check     func(error) bool
	}{
		"a person":               {"admin-token", "web", bound(p), 3600, apierrors.IsForbidden},
		"a pod of another node":  {"node1-token", "web", bound(other), 3600, apierrors.IsForbidden},
		"another ServiceAccount": {"node1-token", "default", bound(p), 3600, apierrors.IsForbidden},
		"no bound pod":           {"node1-token", "web", nil, 3600, apierrors.IsBadRequest},
		"a pod's old uid":        {"node1-token", "web", &authenticationv1.BoundObjectReference{Kind: "Pod", Name: p.Name, UID: "old"}, 3600, apierrors.IsConflict},
		"under ten minutes":      {"node1-token", "web", bound(p), 60, apierrors.IsBadRequest},
	}
	for what, c := range refused {
		if _, err := request(c.token, c.sa, c.ref, c.exp); !c.check(err) {
			t.Errorf("token request, %s: %v", what, err)
		}
	}
	tr, err := request("node1-token", "web", bound(p), 3600)
	if err != nil {
		t.Fatalf("the agent's token request: %v", err)
	}
	if left := time.Until(tr.Status.ExpirationTimestamp.Time); left < 59*time.Minute || left > time.Hour {
		t.Errorf("token expires in %s, want an hour", left)
	}
	long, err := request("node1-token", "web", bound(p), 365*24*3600)
	if err != nil || time.Until(long.Status.ExpirationTimestamp.Time) > 48*time.Hour {
		t.Errorf("a year-long token request: %v, expires %v, want at most 48 hours", err, long.Status.ExpirationTimestamp)
	}

	podsOf := func(c kubernetes.Interface) error {
		_, err := c.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
		return err
	}
	app := ts.client(t, tr.Status.Token)
	if err := podsOf(app); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `"system:serviceaccount:shop:web"`) {
		t.Fatalf("listing pods before any RoleBinding: %v, want 403 naming the ServiceAccount", err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-reads-pods"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "web"}}}
	if err := ts.st.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the binding's missing role named in the log", func() error {
		if err := podsOf(app); !apierrors.IsForbidden(err) {
			return err
		}
		if !strings.Contains(log.String(), `RoleBinding shop/web-reads-pods refers to Role \"pod-reader\", which does not exist`) {
			return errNotYet
		}
		return nil
	})
	if err := ts.st.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ServiceAccount lists pods once the RoleBinding's role exists", func() error { return podsOf(app) })
	if _, err := app.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("pods of another namespace: %v, want 403", err)
	}
	if _, err := app.CoreV1().Secrets("shop").Get(ctx, "db", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a secret without a grant of secrets: %v, want 403", err)
	}
	review := func(c kubernetes.Interface, verb, resource, ns string) bool {
		t.Helper()
		r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: resource, Namespace: ns}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("can-i %s %s -n %s: %v", verb, resource, ns, err)
		}
		return r.Status.Allowed
	}
	for _, c := range []struct {
		token, verb, resource, ns string
		want                      bool
	}{
		{tr.Status.Token, "list", "pods", "shop", true},
		{tr.Status.Token, "list", "pods", "default", false},
		{tr.Status.Token, "get", "secrets", "shop", false},
		{tr.Status.Token, "delete", "pods", "shop", false}, // writes are Git's
		{"admin-token", "list", "secrets", "", true},
		{"admin-token", "create", "pods", "shop", false},
		{"reader-token", "list", "pods", "shop", false},
	} {
		if got := review(ts.client(t, c.token), c.verb, c.resource, c.ns); got != c.want {
			t.Errorf("can-i %s %s -n %q with %.12s…: %v, want %v", c.verb, c.resource, c.ns, c.token, got, c.want)
		}
	}
	who, err := app.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != "system:serviceaccount:shop:web" ||
		strings.Join(who.Status.UserInfo.Groups, ",") != "system:serviceaccounts,system:serviceaccounts:shop,system:authenticated" {
		t.Errorf("whoami: %v %+v", err, who)
	}
	// A reviewer checks the token; one without the grant may not.
	tokenReview := func(token string) (*authenticationv1.TokenReview, error) {
		return ts.client(t, token).AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token}}, metav1.CreateOptions{})
	}
	if rev, err := tokenReview("admin-token"); err != nil || !rev.Status.Authenticated || rev.Status.User.Username != "system:serviceaccount:shop:web" || rev.Spec.Token != "" {
		t.Errorf("token review by an admin: %v %+v", err, rev)
	}
	if _, err := tokenReview("reader-token"); !apierrors.IsForbidden(err) {
		t.Errorf("token review without the grant: %v, want 403", err)
	}

	// The binding goes: the token reads nothing again.
	if err := ts.st.Delete(ctx, resourceNamed(t, "rolebindings.rbac.authorization.k8s.io"), "shop", binding.Name, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "403 once the RoleBinding is gone", func() error {
		if err := podsOf(app); !apierrors.IsForbidden(err) {
			return errNotYet
		}
		return nil
	})

	// Tokens that are not what they say.
	signer := satoken.NewSigner(key, testIssuer)
	now := time.Now()
	claims := satoken.Claims{Issuer: testIssuer, Audiences: []string{testIssuer}, Namespace: "shop", ServiceAccount: "web",
		ServiceAccountUID: string(sa.UID), Pod: p.Name, PodUID: string(p.UID), IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour)}
	sign := func(s *satoken.Signer, c satoken.Claims) string {
		tok, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	forger, err := satoken.LoadOrCreateKey(filepath.Join(t.TempDir(), "forger.key"))
	if err != nil {
		t.Fatal(err)
	}
	expired := claims
	expired.IssuedAt, expired.NotBefore, expired.Expiry = now.Add(-2*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour)
	foreign := claims
	foreign.Audiences = []string{"https://vault.example"}
	otherPod := claims
	otherPod.PodUID = "not-the-pod"
	bad := map[string]struct{ token, logged string }{
		"forged":            {sign(satoken.NewSigner(forger, testIssuer), claims), "satoken"},
		"expired":           {sign(signer, expired), "expired"},
		"another audience":  {sign(signer, foreign), "audience"},
		"another pod's uid": {sign(signer, otherPod), "the pod no longer exists"},
		"tampered":          {tr.Status.Token[:len(tr.Status.Token)-4] + "AAAA", "satoken"},
	}
	for what, c := range bad {
		if err := podsOf(ts.client(t, c.token)); !apierrors.IsUnauthorized(err) || strings.Contains(err.Error(), c.logged) {
			t.Errorf("%s token: %v, want 401 that says nothing more", what, err)
		}
		if !strings.Contains(log.String(), c.logged) {
			t.Errorf("%s token: the log does not say %q:\n%s", what, c.logged, log.String())
		}
	}

	// The pod now runs as another ServiceAccount: the old account's token
	// is refused.
	moved := &corev1.Pod{}
	if err := ts.st.Get(ctx, "shop", p.Name, moved); err != nil {
		t.Fatal(err)
	}
	moved.Spec.ServiceAccountName = "other"
	if err := ts.st.Update(ctx, moved); err != nil {
		t.Fatal(err)
	}
	eventually(t, "401 once the pod runs as another ServiceAccount", func() error {
		if err := podsOf(app); !apierrors.IsUnauthorized(err) {
			return errNotYet
		}
		return nil
	})
	if !strings.Contains(log.String(), "the pod now runs as ServiceAccount other, not web") {
		t.Errorf("the log does not say the pod's account changed:\n%s", log.String())
	}

	// The pod goes: its token with it.
	if err := ts.st.Delete(ctx, podsRes(t), "shop", p.Name, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "401 once the token's pod is gone, for that reason", func() error {
		if err := podsOf(app); !apierrors.IsUnauthorized(err) {
			return errNotYet
		}
		if !strings.Contains(log.String(), "token of pod shop/web-1 (uid "+string(p.UID)+"): the pod no longer exists") {
			return errNotYet
		}
		return nil
	})
}

// Servers on one etcd take each other's tokens: each publishes its key's
// public half, and a server finds a key it does not know there. A key
// nobody published is refused, and asked for again only after a while.
func TestPublishedTokenKeys(t *testing.T) {
	var logA, logB syncBuffer
	optA, keyA := withServiceAccounts(t, &logA)
	a := newTestServer(t, optA)
	ctx := t.Context()
	optB, keyB := withServiceAccounts(t, &logB)
	published := &apiserver.PublishedKeys{Store: a.st, Use: "serviceaccount"}
	b := newTestServer(t, optB, func(c *apiserver.Config) {
		c.Store = a.st
		own := satoken.KeyID(&keyB.PublicKey)
		c.ServiceAccounts.Keys = func(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
			if kid == own {
				return &keyB.PublicKey, nil
			}
			return published.Key(ctx, kid)
		}
	})
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	p := pod("shop", "web-1", nil, "n1", corev1.PodRunning)
	p.Spec.ServiceAccountName = "web"
	for _, o := range []error{a.st.Create(ctx, sa), a.st.Create(ctx, p)} {
		if o != nil {
			t.Fatal(o)
		}
	}
	tr, err := a.client(t, "node1-token").CoreV1().ServiceAccounts("shop").CreateToken(ctx, "web", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	whoami := func(url, token string) error {
		c := &testServer{url: url}
		_, err := c.client(t, token).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return err
	}
	if err := whoami(b.url, tr.Status.Token); !apierrors.IsUnauthorized(err) {
		t.Fatalf("server B, before A published its key: %v, want 401", err)
	}
	if !strings.Contains(logB.String(), "no key") {
		t.Errorf("server B's log does not say the key is unknown:\n%s", logB.String())
	}
	pub, err := satoken.MarshalPublicKey(&keyA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // publishing twice is no error
		if err := a.st.PublishKey(ctx, "serviceaccount", satoken.KeyID(&keyA.PublicKey), pub); err != nil {
			t.Fatal(err)
		}
	}
	// B asked for the key a moment ago: it asks again after a while.
	eventuallyWithin(t, 10*time.Second, "server B takes server A's token once A's key is published", func() error {
		return whoami(b.url, tr.Status.Token)
	})
	if err := whoami(a.url, tr.Status.Token); err != nil {
		t.Errorf("server A, its own token: %v", err)
	}
}

// What RBAC grants by name and by verb holds for secret values too, and
// the reviews answer as the API decides: RBAC for reads and reviews, node
// restriction for agents' writes, the audiences a token names.
func TestSecretGrantsAndReviews(t *testing.T) {
	var log syncBuffer
	opt, _ := withServiceAccounts(t, &log)
	ts := newTestServer(t, opt)
	ctx := t.Context()
	for _, name := range []string{"db", "tls"} {
		if err := ts.st.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Data: map[string][]byte{"v": []byte("s3cret")}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []error{
		ts.st.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "tls-reader"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"tls"}}}}),
		ts.st.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "alice-tls"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "tls-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}}),
	} {
		if o != nil {
			t.Fatal(o)
		}
	}
	alice := ts.client(t, "alice-token")
	eventually(t, "alice reads the tls secret's value", func() error {
		s, err := alice.CoreV1().Secrets("shop").Get(ctx, "tls", metav1.GetOptions{})
		if err == nil && string(s.Data["v"]) != "s3cret" {
			return fmt.Errorf("value %q", s.Data["v"])
		}
		return err
	})
	if _, err := alice.CoreV1().Secrets("shop").Get(ctx, "db", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice, another secret: %v, want 403", err)
	}
	if _, err := alice.CoreV1().Secrets("shop").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice lists secrets with a grant by name: %v, want 403", err)
	}

	can := func(token string, ra authorizationv1.ResourceAttributes) bool {
		t.Helper()
		r, err := ts.client(t, token).AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for _, c := range []struct {
		token string
		ra    authorizationv1.ResourceAttributes
		want  bool
	}{
		{"node1-token", authorizationv1.ResourceAttributes{Verb: "update", Resource: "pods", Subresource: "status", Namespace: "shop"}, true},
		{"node1-token", authorizationv1.ResourceAttributes{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: "shop"}, true},
		{"node1-token", authorizationv1.ResourceAttributes{Verb: "create", Group: "apps", Resource: "deployments", Namespace: "shop"}, false},
		{"reader-token", authorizationv1.ResourceAttributes{Verb: "create", Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}, true},
		{"reader-token", authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"}, false},
		{"alice-token", authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Name: "tls", Namespace: "shop"}, true},
		{"alice-token", authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Name: "db", Namespace: "shop"}, false},
	} {
		if got := can(c.token, c.ra); got != c.want {
			t.Errorf("can-i %+v with %s: %v, want %v", c.ra, c.token, got, c.want)
		}
	}

	// A TokenReview answers with the audiences asked for that the token
	// names; a token for none of them is not authenticated.
	review := func(token string, audiences ...string) *authenticationv1.TokenReview {
		t.Helper()
		r, err := ts.client(t, "admin-token").AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := review("reader-token"); !r.Status.Authenticated || r.Status.User.Username != "reader" || !slices.Equal(r.Status.Audiences, []string{testIssuer}) {
		t.Errorf("review of a static token: %+v", r.Status)
	}
	if r := review("reader-token", "https://vault.example"); r.Status.Authenticated {
		t.Errorf("a static token taken for another audience: %+v", r.Status)
	}
}
