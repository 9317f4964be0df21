package apiserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/keelson/keelson/internal/rbac"
	"github.com/keelson/keelson/internal/satoken"
	"github.com/keelson/keelson/store"
)

// The reviews: questions to the server about access, which create nothing.
var (
	authorizationGV          = schema.GroupVersion{Group: "authorization.k8s.io", Version: "v1"}
	authenticationGV         = schema.GroupVersion{Group: "authentication.k8s.io", Version: "v1"}
	selfSubjectAccessReviews = store.Resource{GVK: authorizationGV.WithKind("SelfSubjectAccessReview"), Plural: "selfsubjectaccessreviews"}
	selfSubjectRulesReviews  = store.Resource{GVK: authorizationGV.WithKind("SelfSubjectRulesReview"), Plural: "selfsubjectrulesreviews"}
	tokenReviews             = store.Resource{GVK: authenticationGV.WithKind("TokenReview"), Plural: "tokenreviews"}
	selfSubjectReviews       = store.Resource{GVK: authenticationGV.WithKind("SelfSubjectReview"), Plural: "selfsubjectreviews"}
	reviewVerbs              = []string{"create"}
)

func (s *Server) registerReviews() {
	s.mux.HandleFunc("POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews", s.selfSubjectAccessReview)
	s.mux.HandleFunc("POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews", s.selfSubjectRulesReview)
	s.mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", s.tokenReview)
	s.mux.HandleFunc("POST /apis/authentication.k8s.io/v1/selfsubjectreviews", s.selfSubjectReview)
}

// decodeReview reads a review's body into into.
func decodeReview(r *http.Request, into runtime.Object) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err == nil {
		_, _, err = scheme.Codecs.UniversalDeserializer().Decode(body, nil, into)
	}
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("decode the review: %v", err))
	}
	return nil
}

// selfSubjectAccessReview answers `kubectl auth can-i`: may the caller do
// this? Reads are decided as the API decides them; writes are refused to
// everyone but agents, whatever RBAC says, since Git is the only write path.
func (s *Server) selfSubjectAccessReview(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r.Context())
	rev := &authorizationv1.SelfSubjectAccessReview{}
	if err := decodeReview(r, rev); err != nil {
		writeStatus(w, err)
		return
	}
	var a rbac.Attributes
	switch ra, na := rev.Spec.ResourceAttributes, rev.Spec.NonResourceAttributes; {
	case ra != nil:
		a = rbac.Attributes{User: u.Name, Groups: u.Groups, Verb: ra.Verb, ResourceRequest: true,
			Namespace: ra.Namespace, APIGroup: ra.Group, Resource: ra.Resource, Subresource: ra.Subresource, Name: ra.Name}
		if a.Resource == "namespaces" && a.APIGroup == "" && a.Name != "" {
			a.Namespace = a.Name // as the API decides it: a namespace is in itself
		}
	case na != nil:
		a = rbac.Attributes{User: u.Name, Groups: u.Groups, Verb: na.Verb, Path: na.Path}
	default:
		writeStatus(w, apierrors.NewBadRequest("spec: one of resourceAttributes and nonResourceAttributes is needed"))
		return
	}
	rev.Status = s.decide(r.Context(), u, a)
	rev.TypeMeta = metav1.TypeMeta{Kind: "SelfSubjectAccessReview", APIVersion: authorizationGV.String()}
	rev.CreationTimestamp = metav1.Now()
	writeJSON(w, http.StatusCreated, rev)
}

// decide is a review's answer for u.
func (s *Server) decide(ctx context.Context, u *User, a rbac.Attributes) authorizationv1.SubjectAccessReviewStatus {
	if a.ResourceRequest && reviewResource(a) {
		// The reviews store nothing: RBAC decides them, as the API does.
		ok, reason := s.authorized(ctx, u, a)
		return authorizationv1.SubjectAccessReviewStatus{Allowed: ok, Reason: reason}
	}
	if a.ResourceRequest && !slices.Contains(readVerbs, a.Verb) {
		if _, ok := u.NodeName(); ok && nodeMayWrite(a) {
			return authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "node restriction lets an agent do this to the objects of its own node"}
		}
		return authorizationv1.SubjectAccessReviewStatus{Denied: true,
			Reason: "keelson is GitOps: the API is read-only, change the manifests in Git"}
	}
	if !a.ResourceRequest && (publicPaths[a.Path] || discoveryPath(a.Path)) && a.Verb == "get" {
		return authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "every authenticated user may read the API's discovery and health"}
	}
	ok, reason := s.authorized(ctx, u, a)
	return authorizationv1.SubjectAccessReviewStatus{Allowed: ok, Reason: reason}
}

// reviewResource: a review the API serves, which creates nothing.
func reviewResource(a rbac.Attributes) bool {
	switch a.APIGroup {
	case authorizationGV.Group:
		return a.Resource == selfSubjectAccessReviews.Plural || a.Resource == selfSubjectRulesReviews.Plural
	case authenticationGV.Group:
		return a.Resource == tokenReviews.Plural || a.Resource == selfSubjectReviews.Plural
	}
	return false
}

// nodeMayWrite says whether node restriction lets an agent make a write of
// this kind to some object of its own node (nodeWrite has the rules).
func nodeMayWrite(a rbac.Attributes) bool {
	if a.APIGroup == "coordination.k8s.io" {
		return a.Resource == "leases" && (a.Verb == "create" || a.Verb == "update")
	}
	if a.APIGroup != "" {
		return false
	}
	switch a.Resource {
	case "nodes":
		return a.Verb == "create" || a.Verb == "update"
	case "pods":
		return a.Subresource == "status" && a.Verb == "update" || a.Subresource == "" && a.Verb == "delete"
	case "events":
		return a.Verb == "create" || a.Verb == "update"
	case "serviceaccounts":
		return a.Subresource == "token" && a.Verb == "create"
	case "persistentvolumes":
		return a.Verb == "create" || a.Verb == "update" || a.Verb == "delete"
	}
	return false
}

// discoveryPath: the API's discovery documents, which every caller reads.
func discoveryPath(p string) bool {
	return p == "/api" || p == "/apis" || p == "/openapi/v2" || p == "/version" ||
		strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/apis/")
}

// selfSubjectRulesReview answers `kubectl auth can-i --list`: what may the
// caller do in a namespace, as RBAC and the authorization file say.
func (s *Server) selfSubjectRulesReview(w http.ResponseWriter, r *http.Request) {
	ctx, u := r.Context(), userFrom(r.Context())
	rev := &authorizationv1.SelfSubjectRulesReview{}
	if err := decodeReview(r, rev); err != nil {
		writeStatus(w, err)
		return
	}
	ns := rev.Spec.Namespace
	var st authorizationv1.SubjectRulesReviewStatus
	if _, ok := u.NodeName(); ok || u.InGroup(GroupMasters) {
		st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{Verbs: readVerbs, APIGroups: []string{"*"}, Resources: []string{"*"}})
	} else if s.granted(u, ns) {
		st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{Verbs: readVerbs, APIGroups: []string{"*"}, Resources: []string{"*"}})
	}
	p, err := s.rbacPolicy(ctx)
	if err != nil {
		st.Incomplete, st.EvaluationError = true, err.Error()
	} else {
		rules, errs := p.RulesFor(u.Name, u.Groups, ns)
		for _, rule := range rules {
			addRule(&st, rule)
		}
		if len(errs) > 0 {
			st.Incomplete = true
			st.EvaluationError = fmt.Sprint(errs)
		}
	}
	rev.Status = st
	rev.TypeMeta = metav1.TypeMeta{Kind: "SelfSubjectRulesReview", APIVersion: authorizationGV.String()}
	rev.CreationTimestamp = metav1.Now()
	writeJSON(w, http.StatusCreated, rev)
}

func addRule(st *authorizationv1.SubjectRulesReviewStatus, r rbacv1.PolicyRule) {
	if len(r.NonResourceURLs) > 0 {
		st.NonResourceRules = append(st.NonResourceRules, authorizationv1.NonResourceRule{Verbs: r.Verbs, NonResourceURLs: r.NonResourceURLs})
		return
	}
	st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{Verbs: r.Verbs, APIGroups: r.APIGroups, Resources: r.Resources, ResourceNames: r.ResourceNames})
}

// selfSubjectReview answers `kubectl auth whoami`.
func (s *Server) selfSubjectReview(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r.Context())
	rev := &authenticationv1.SelfSubjectReview{
		TypeMeta:   metav1.TypeMeta{Kind: "SelfSubjectReview", APIVersion: authenticationGV.String()},
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Now()},
		Status:     authenticationv1.SelfSubjectReviewStatus{UserInfo: authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}},
	}
	writeJSON(w, http.StatusCreated, rev)
}

// tokenReview checks a token for a caller RBAC lets create tokenreviews (a
// proxy in front of a pod's own API, as kube-rbac-proxy): who it is, if it
// is valid for the audiences asked.
func (s *Server) tokenReview(w http.ResponseWriter, r *http.Request) {
	ctx, u := r.Context(), userFrom(r.Context())
	a := rbac.Attributes{User: u.Name, Groups: u.Groups, Verb: "create", ResourceRequest: true, APIGroup: authenticationGV.Group, Resource: "tokenreviews"}
	if ok, reason := s.authorized(ctx, u, a); !ok {
		writeStatus(w, apierrors.NewForbidden(schema.GroupResource{Group: authenticationGV.Group, Resource: "tokenreviews"}, "",
			fmt.Errorf("user %q cannot create tokenreviews: %s", u.Name, reason)))
		return
	}
	rev := &authenticationv1.TokenReview{}
	if err := decodeReview(r, rev); err != nil {
		writeStatus(w, err)
		return
	}
	who, audiences, err := s.authenticateToken(ctx, rev.Spec.Token, rev.Spec.Audiences)
	if err != nil {
		s.log.Info("token review: token refused", "reviewer", u.Name, "reason", err.Error())
		rev.Status = authenticationv1.TokenReviewStatus{Error: "the token is not valid"}
	} else {
		rev.Status = authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: audiences,
			User: authenticationv1.UserInfo{Username: who.Name, UID: who.UID, Groups: who.Groups}}
	}
	rev.Spec.Token = "" // never echoed
	rev.TypeMeta = metav1.TypeMeta{Kind: "TokenReview", APIVersion: authenticationGV.String()}
	rev.CreationTimestamp = metav1.NewTime(time.Now())
	writeJSON(w, http.StatusCreated, rev)
}

// authenticateToken resolves a bearer token: a static token of the token
// file, or a ServiceAccount token valid for one of audiences (the API's own
// when none). It returns the audiences the token was taken for.
func (s *Server) authenticateToken(ctx context.Context, token string, audiences []string) (*User, []string, error) {
	var api []string
	if s.cfg.ServiceAccounts != nil {
		api = s.cfg.ServiceAccounts.Audiences
	}
	if u := s.cfg.Tokens.lookupUser(token); u != nil && len(audiences) == 0 {
		// A static token is for this API, and only for it.
		return &User{Name: u.Name, UID: u.UID, Groups: append(slices.Clone(u.Groups), GroupAuthenticated)}, api, nil
	}
	if s.cfg.ServiceAccounts == nil || !satoken.LooksLikeJWT(token) {
		return nil, nil, fmt.Errorf("not a token of this cluster")
	}
	if len(audiences) == 0 {
		audiences = api
	}
	u, aud, err := s.serviceAccountUser(ctx, token, audiences)
	if err != nil {
		return nil, nil, err
	}
	// The audiences asked for that the token names, as Kubernetes answers.
	var both []string
	for _, a := range audiences {
		if slices.Contains(aud, a) {
			both = append(both, a)
		}
	}
	return u, both, nil
}
