package apiserver

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// write serves create, update, patch and delete: node agents may make the
// changes node restriction allows; people get 405, since Git is the only
// write path.
func (s *Server) write(w http.ResponseWriter, r *http.Request, q *request, u *User) {
	if node, ok := u.NodeName(); ok {
		s.nodeWrite(w, r, q, node)
		return
	}
	writeStatus(w, s.gitOpsRefusal(r, q, u))
}

// gitOpsRefusal is the 405 a person's write gets, naming where the object
// comes from in Git when the store knows and u may read it.
func (s *Server) gitOpsRefusal(r *http.Request, q *request, u *User) *apierrors.StatusError {
	msg := fmt.Sprintf("keelson is GitOps: the API is read-only, %s of %s is refused; change the manifests in Git and let the sync apply them", q.verb, q.res.Plural)
	get := &request{verb: "get", res: q.res, namespace: q.namespace, name: q.name}
	// Where the object comes from is told only to those who may read it:
	// the refusal must not tell others whether it exists.
	if ok, _ := s.authorized(r.Context(), u, attributes(u, get)); q.name != "" && ok {
		obj, err := q.res.New()
		if err == nil && s.cfg.Store.Get(r.Context(), q.namespace, q.name, obj) == nil {
			if src := obj.GetLabels()[keelsonv1alpha1.LabelSource]; src != "" {
				msg += fmt.Sprintf("; %s comes from sync %q", q.name, src)
				if origin := obj.GetAnnotations()[keelsonv1alpha1.AnnotationOrigin]; origin != "" {
					msg += fmt.Sprintf(", file %s", origin)
				}
				msg += "; the sync's status names the repository and path it reads"
			} else {
				msg += fmt.Sprintf("; %s is made by keelson's controllers, from objects in Git", q.name)
			}
		}
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusMethodNotAllowed, Reason: metav1.StatusReasonMethodNotAllowed,
		Message: msg,
		Details: &metav1.StatusDetails{Group: q.res.GVK.Group, Kind: q.res.Plural, Name: q.name},
	}}
}
