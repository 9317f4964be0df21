package apiserver

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/keelson/keelson/internal/rbac"
	"github.com/keelson/keelson/internal/satoken"
	"github.com/keelson/keelson/store"
)

// ServiceAccountConfig is how the server issues and checks ServiceAccount
// tokens.
type ServiceAccountConfig struct {
	// Signer signs the tokens agents ask for, for the pods bound to them.
	Signer *satoken.Signer
	// Issuer is the tokens' iss; tokens of another issuer are refused.
	Issuer string
	// Audiences are the API's: a token must name one of them to be taken,
	// and a token request that names none gets them.
	Audiences []string
	// Keys finds the public key a token names by its id: this server's, or
	// another server's that shares the etcd.
	Keys func(ctx context.Context, kid string) (*ecdsa.PublicKey, error)
	// MinExpiration and MaxExpiration bound the lifetime a token request
	// may ask for (10 minutes and 48 hours when zero); a request below the
	// minimum is refused, one above the maximum gets the maximum, as in
	// Kubernetes.
	MinExpiration, MaxExpiration time.Duration
}

// Defaults of token requests, as in Kubernetes.
const (
	defaultTokenExpiration = time.Hour
	defaultMinExpiration   = 10 * time.Minute
	defaultMaxExpiration   = 48 * time.Hour
)

// deletedTokenGrace is how long a deleted pod's token is still taken, while
// the pod stops, as in Kubernetes.
const deletedTokenGrace = time.Minute

var (
	podsResource            = store.MustResource("pods")
	serviceAccountsResource = store.MustResource("serviceaccounts")
)

// serviceAccountUser checks a ServiceAccount token: signed by a server of
// this cluster, for one of audiences, not expired, and bound to a pod that still
// exists, of a ServiceAccount that still exists. The error says why not,
// for the server's log; the client only learns that the token is invalid.
func (s *Server) serviceAccountUser(ctx context.Context, token string, audiences []string) (*User, []string, error) {
	c, err := s.verifyToken(ctx, token, audiences)
	if err != nil {
		return nil, nil, err
	}
	if c.Pod == "" {
		return nil, nil, fmt.Errorf("token of ServiceAccount %s/%s is bound to no pod: keelson takes only tokens bound to a pod", c.Namespace, c.ServiceAccount)
	}
	p, err := s.cachedObject(ctx, podsResource, c.Namespace, c.Pod)
	if err != nil {
		return nil, nil, fmt.Errorf("token of pod %s/%s: %w", c.Namespace, c.Pod, err)
	}
	if p == nil || string(p.GetUID()) != c.PodUID {
		return nil, nil, fmt.Errorf("token of pod %s/%s (uid %s): the pod no longer exists", c.Namespace, c.Pod, c.PodUID)
	}
	if pod := p.(*corev1.Pod); serviceAccountOf(pod) != c.ServiceAccount {
		return nil, nil, fmt.Errorf("token of pod %s/%s: the pod now runs as ServiceAccount %s, not %s", c.Namespace, c.Pod, serviceAccountOf(pod), c.ServiceAccount)
	}
	if gone := p.GetDeletionTimestamp(); gone != nil && gone.Time.Before(time.Now().Add(-deletedTokenGrace)) {
		// As in Kubernetes: a pod that takes long to stop keeps no token.
		return nil, nil, fmt.Errorf("token of pod %s/%s: the pod has been deleted since %s", c.Namespace, c.Pod, gone.UTC().Format(time.RFC3339))
	}
	a, err := s.cachedObject(ctx, serviceAccountsResource, c.Namespace, c.ServiceAccount)
	if err != nil {
		return nil, nil, fmt.Errorf("token of ServiceAccount %s/%s: %w", c.Namespace, c.ServiceAccount, err)
	}
	if a == nil || (c.ServiceAccountUID != "" && string(a.GetUID()) != c.ServiceAccountUID) {
		return nil, nil, fmt.Errorf("token of ServiceAccount %s/%s (uid %s): the ServiceAccount no longer exists", c.Namespace, c.ServiceAccount, c.ServiceAccountUID)
	}
	return &User{Name: c.Subject(), UID: c.ServiceAccountUID,
		Groups: append(rbac.ServiceAccountGroups(c.Namespace), GroupAuthenticated)}, c.Audiences, nil
}

// verifiedTokens remembers the claims of tokens whose signature was checked,
// until they expire: an ECDSA check costs some 100 µs, and a pod's client
// sends the same token with every request for most of an hour. What may
// change meanwhile (the pod, the ServiceAccount, RBAC) is looked at on
// every request.
type verifiedTokens struct {
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*satoken.Claims
	off bool // tests and benchmarks turn the memory off
}

// maxVerifiedTokens bounds the memory: past it, expired tokens go, then
// others at random, so that a busy cluster never checks every token again
// at once.
const maxVerifiedTokens = 8192

// verifyToken checks a token's signature, issuer, audiences and times.
func (s *Server) verifyToken(ctx context.Context, token string, audiences []string) (*satoken.Claims, error) {
	sa, vt := s.cfg.ServiceAccounts, &s.verified
	h := sha256.New()
	h.Write([]byte(token))
	for _, a := range audiences {
		h.Write([]byte{0})
		h.Write([]byte(a))
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	now := time.Now()
	vt.mu.Lock()
	c, ok := vt.m[key]
	vt.mu.Unlock()
	if ok && now.Before(c.Expiry) {
		return c, nil
	}
	v := satoken.Verifier{Issuer: sa.Issuer, Keys: func(kid string) (*ecdsa.PublicKey, error) { return sa.Keys(ctx, kid) }}
	c, err := v.Verify(token, audiences, now)
	if err != nil {
		return nil, err
	}
	vt.mu.Lock()
	defer vt.mu.Unlock()
	if vt.off {
		return c, nil
	}
	if len(vt.m) >= maxVerifiedTokens {
		for k, old := range vt.m {
			if !now.Before(old.Expiry) {
				delete(vt.m, k)
			}
		}
		for k := range vt.m { // any one, at random, while still full
			if len(vt.m) < maxVerifiedTokens {
				break
			}
			delete(vt.m, k)
		}
	}
	if vt.m == nil {
		vt.m = map[[sha256.Size]byte]*satoken.Claims{}
	}
	vt.m[key] = c
	return c, nil
}

// cachedObject reads an object from the resource's watch cache, which is
// kept in step with etcd by its watch; nil when there is none.
func (s *Server) cachedObject(ctx context.Context, res store.Resource, ns, name string) (store.Object, error) {
	c := s.cacheFor(res)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.waitReady(wctx); err != nil {
		return nil, fmt.Errorf("the %s cache is not ready: %w", res.Plural, err)
	}
	e, _ := c.get(ns + "/" + name)
	if e == nil {
		return nil, nil
	}
	return e.obj, nil
}

// createToken serves a TokenRequest (POST
// .../serviceaccounts/<name>/token): an agent asks for a token for a pod
// bound to its node, of the pod's ServiceAccount. Nobody else may: tokens
// are for pods.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, q *request, u *User) {
	forbid := func(why string) {
		writeStatus(w, apierrors.NewForbidden(q.groupResource(), q.name, fmt.Errorf("%s may not create a token for ServiceAccount %s/%s: %s", u.Name, q.namespace, q.name, why)))
	}
	node, ok := u.NodeName()
	if !ok {
		forbid("only node agents ask for tokens, for the pods bound to them")
		return
	}
	if s.cfg.ServiceAccounts == nil {
		writeStatus(w, apierrors.NewServiceUnavailable("this server issues no ServiceAccount tokens"))
		return
	}
	tr := &authenticationv1.TokenRequest{}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err == nil {
		_, _, err = scheme.Codecs.UniversalDeserializer().Decode(body, nil, tr)
	}
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("decode TokenRequest: %v", err)))
		return
	}
	ref := tr.Spec.BoundObjectRef
	if ref == nil || ref.Kind != "Pod" || ref.Name == "" || ref.UID == "" {
		writeStatus(w, apierrors.NewBadRequest("a TokenRequest must be bound to a pod: spec.boundObjectRef needs kind Pod, a name and a uid"))
		return
	}
	ctx := r.Context()
	p := &corev1.Pod{}
	if err := s.cfg.Store.Get(ctx, q.namespace, ref.Name, p); err != nil {
		writeStatus(w, statusError(err, schema.GroupResource{Resource: "pods"}, ref.Name))
		return
	}
	switch {
	case p.DeletionTimestamp != nil:
		forbid(fmt.Sprintf("pod %s/%s is being deleted", p.Namespace, p.Name))
		return
	case p.UID != ref.UID:
		writeStatus(w, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, ref.Name, fmt.Errorf("the pod's uid is %s, not %s", p.UID, ref.UID)))
		return
	case p.Spec.NodeName != node:
		forbid(fmt.Sprintf("pod %s/%s is not bound to node %s", p.Namespace, p.Name, node))
		return
	case serviceAccountOf(p) != q.name:
		forbid(fmt.Sprintf("pod %s/%s runs as ServiceAccount %s", p.Namespace, p.Name, serviceAccountOf(p)))
		return
	}
	a := &corev1.ServiceAccount{}
	if err := s.cfg.Store.Get(ctx, q.namespace, q.name, a); err != nil {
		writeStatus(w, statusError(err, q.groupResource(), q.name))
		return
	}
	sa := s.cfg.ServiceAccounts
	lifetime := defaultTokenExpiration
	if e := tr.Spec.ExpirationSeconds; e != nil {
		lifetime = time.Duration(*e) * time.Second
	}
	minExp, maxExp := cmp.Or(sa.MinExpiration, defaultMinExpiration), cmp.Or(sa.MaxExpiration, defaultMaxExpiration)
	if lifetime < minExp {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("spec.expirationSeconds: %d is under the least lifetime, %d seconds", int64(lifetime/time.Second), int64(minExp/time.Second))))
		return
	}
	lifetime = min(lifetime, maxExp)
	audiences := tr.Spec.Audiences
	if len(audiences) == 0 {
		audiences = sa.Audiences
	}
	now := time.Now().Truncate(time.Second)
	token, err := sa.Signer.Sign(satoken.Claims{
		Issuer: sa.Issuer, Audiences: audiences,
		Namespace: a.Namespace, ServiceAccount: a.Name, ServiceAccountUID: string(a.UID),
		Pod: p.Name, PodUID: string(p.UID), Node: node,
		IssuedAt: now, NotBefore: now, Expiry: now.Add(lifetime),
	})
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	tr.TypeMeta = metav1.TypeMeta{Kind: "TokenRequest", APIVersion: "authentication.k8s.io/v1"}
	tr.ObjectMeta = metav1.ObjectMeta{Name: a.Name, Namespace: a.Namespace, CreationTimestamp: metav1.NewTime(now)}
	tr.Spec.Audiences = audiences
	tr.Spec.ExpirationSeconds = new(int64(lifetime / time.Second))
	tr.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(now.Add(lifetime))}
	writeJSON(w, http.StatusCreated, tr)
}

// serviceAccountOf is the ServiceAccount a pod runs as.
func serviceAccountOf(p *corev1.Pod) string {
	if p.Spec.ServiceAccountName != "" {
		return p.Spec.ServiceAccountName
	}
	return "default"
}

// PublishedKeys finds the public keys the servers published in the store.
// It reads them all at once, at most every few seconds whatever the key
// ids asked for (a token naming a made-up key costs etcd nothing), and
// again each minute, so that a key removed from etcd stops being taken.
type PublishedKeys struct {
	Store *store.Store
	// Use is the keys' purpose, as published ("serviceaccount").
	Use string

	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey
	read time.Time // when keys were read; zero before the first read
}

const (
	// keysReadAgain is the least time between two reads of the keys.
	keysReadAgain = 5 * time.Second
	// keysMaxAge is the longest the keys are taken without reading them.
	keysMaxAge = time.Minute
)

// Key returns the public key published under kid.
func (k *PublishedKeys) Key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	pub, ok := k.keys[kid]
	age := time.Since(k.read)
	if ok && age < keysMaxAge || !ok && !k.read.IsZero() && age < keysReadAgain {
		if !ok {
			return nil, fmt.Errorf("%w: no key %q is published", satoken.ErrUnknownKey, short(kid))
		}
		return pub, nil
	}
	// One read at a time: the lock is held, and those who wait find the
	// keys read.
	raw, err := k.Store.PublishedKeys(ctx, k.Use)
	if err != nil {
		if ok {
			return pub, nil // etcd's trouble: the key read last still holds
		}
		return nil, err
	}
	keys := make(map[string]*ecdsa.PublicKey, len(raw))
	for id, b := range raw {
		if p, err := satoken.ParsePublicKey(b); err == nil {
			keys[id] = p
		}
	}
	k.keys, k.read = keys, time.Now()
	if pub, ok = keys[kid]; !ok {
		return nil, fmt.Errorf("%w: no key %q is published", satoken.ErrUnknownKey, short(kid))
	}
	return pub, nil
}

// short cuts what a caller sent to a length fit for a log line.
func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
