package apiserver

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// maxBodyBytes bounds a write's body, as Kubernetes bounds requests to 3 MiB.
const maxBodyBytes = 3 << 20

// nodeLeaseNamespace holds the agents' heartbeat leases, as in Kubernetes.
const nodeLeaseNamespace = "kube-node-lease"

// nodeWrite applies node restriction: an agent may create and update its own
// Node (and its status) and its lease, update the status of pods bound to it,
// delete its own pods once stopped, and create Events and update its own.
// Anything else is 403.
func (s *Server) nodeWrite(w http.ResponseWriter, r *http.Request, q *request, node string) {
	forbid := func(why string) {
		writeStatus(w, apierrors.NewForbidden(q.groupResource(), q.name,
			fmt.Errorf("node %q may not %s %s: %s", node, q.verb, describe(q), why)))
	}
	switch {
	case q.res.Plural == "nodes" && q.res.GVK.Group == "":
		if !(q.verb == "create" && q.name == "" || q.verb == "update" && q.name == node) {
			forbid("a node may create and update only its own Node")
			return
		}
		obj, err := s.decodeBody(r, q)
		if err != nil {
			writeStatus(w, err)
			return
		}
		if obj.GetName() != node {
			forbid("a node may create and update only its own Node")
			return
		}
		s.finishWrite(w, q, obj, s.storeWrite(r, q, obj))
	case q.res.Plural == "leases" && q.res.GVK.Group == "coordination.k8s.io":
		if q.namespace != nodeLeaseNamespace || (q.verb != "create" && q.verb != "update") || (q.name != "" && q.name != node) {
			forbid(fmt.Sprintf("a node may create and update only its own lease, %s/%s", nodeLeaseNamespace, node))
			return
		}
		obj, err := s.decodeBody(r, q)
		if err != nil {
			writeStatus(w, err)
			return
		}
		if obj.GetName() != node {
			forbid(fmt.Sprintf("a node may create and update only its own lease, %s/%s", nodeLeaseNamespace, node))
			return
		}
		s.finishWrite(w, q, obj, s.storeWrite(r, q, obj))
	case q.res.Plural == "pods" && q.res.GVK.Group == "":
		s.nodePodWrite(w, r, q, node, forbid)
	case q.res.Plural == "persistentvolumes" && q.res.GVK.Group == "":
		s.nodeVolumeWrite(w, r, q, node, forbid)
	case q.res.Plural == "events" && q.res.GVK.Group == "" && (q.verb == "create" || q.verb == "update"):
		s.nodeEventWrite(w, r, q, node, forbid)
	default:
		forbid("nodes may write only their Node, lease, pod status, local-path volumes and events")
	}
}

// nodeEventWrite lets an agent create events and update its own (a
// repeat's count), as the kubelet's recorder does.
func (s *Server) nodeEventWrite(w http.ResponseWriter, r *http.Request, q *request, node string, forbid func(string)) {
	const why = "a node may update only its own events (source.host: <node>)"
	ctx := r.Context()
	obj, err := s.decodeBody(r, q)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if q.verb == "create" {
		s.finishWrite(w, q, obj, s.cfg.Store.Create(ctx, obj))
		return
	}
	cur := &corev1.Event{}
	if err := s.cfg.Store.Get(ctx, q.namespace, q.name, cur); err != nil {
		writeStatus(w, statusError(err, q.groupResource(), q.name))
		return
	}
	if cur.Source.Host != node || obj.(*corev1.Event).Source.Host != node {
		forbid(why)
		return
	}
	s.finishWrite(w, q, obj, s.cfg.Store.Update(ctx, obj))
}

// nodeVolumeWrite lets an agent create and update the local-path volumes
// it provisions: those annotated with its own node, before and after.
func (s *Server) nodeVolumeWrite(w http.ResponseWriter, r *http.Request, q *request, node string, forbid func(string)) {
	const why = "a node may create and update only the local-path volumes it provisions (annotated " + keelsonv1alpha1.AnnotationLocalPathNode + ": <node>)"
	ctx := r.Context()
	if q.verb != "create" && q.verb != "update" || q.subresource != "" {
		forbid(why)
		return
	}
	if q.verb == "update" {
		cur := &corev1.PersistentVolume{}
		if err := s.cfg.Store.Get(ctx, "", q.name, cur); err != nil {
			writeStatus(w, statusError(err, q.groupResource(), q.name))
			return
		}
		if cur.Annotations[keelsonv1alpha1.AnnotationLocalPathNode] != node {
			forbid(why)
			return
		}
	}
	obj, err := s.decodeBody(r, q)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if obj.GetAnnotations()[keelsonv1alpha1.AnnotationLocalPathNode] != node {
		forbid(why)
		return
	}
	s.finishWrite(w, q, obj, s.storeWrite(r, q, obj))
}

func (s *Server) nodePodWrite(w http.ResponseWriter, r *http.Request, q *request, node string, forbid func(string)) {
	ctx := r.Context()
	cur := &corev1.Pod{}
	if q.name != "" {
		if err := s.cfg.Store.Get(ctx, q.namespace, q.name, cur); err != nil {
			writeStatus(w, statusError(err, q.groupResource(), q.name))
			return
		}
		if cur.Spec.NodeName != node {
			forbid("the pod is not bound to this node")
			return
		}
	}
	switch {
	case q.verb == "update" && q.subresource == "status":
		obj, err := s.decodeBody(r, q)
		if err != nil {
			writeStatus(w, err)
			return
		}
		s.finishWrite(w, q, obj, s.cfg.Store.UpdateStatus(ctx, obj))
	case q.verb == "delete":
		// Deletion-complete: the agent has stopped the pod and removes it.
		pre := &metav1.Preconditions{UID: &cur.UID}
		var opts metav1.DeleteOptions
		if body, _ := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes)); len(body) > 0 {
			if _, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, &opts); err != nil && json.Unmarshal(body, &opts) != nil {
				writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("delete options: %v", err)))
				return
			}
			if opts.Preconditions != nil {
				pre = opts.Preconditions
			}
		}
		if err := s.cfg.Store.Delete(ctx, q.res, q.namespace, q.name, pre); err != nil {
			writeStatus(w, statusError(err, q.groupResource(), q.name))
			return
		}
		writeJSON(w, http.StatusOK, cur)
	default:
		forbid("a node may only update the status of pods bound to it and delete them (spec changes are refused)")
	}
}

// storeWrite creates or updates obj as the verb says.
func (s *Server) storeWrite(r *http.Request, q *request, obj store.Object) error {
	switch {
	case q.verb == "create":
		return s.cfg.Store.Create(r.Context(), obj)
	case q.subresource == "status":
		return s.cfg.Store.UpdateStatus(r.Context(), obj)
	}
	return s.cfg.Store.Update(r.Context(), obj)
}

func (s *Server) finishWrite(w http.ResponseWriter, q *request, obj store.Object, err error) {
	if err != nil {
		writeStatus(w, statusError(err, q.groupResource(), obj.GetName()))
		return
	}
	code := http.StatusOK
	if q.verb == "create" {
		code = http.StatusCreated
	}
	obj.GetObjectKind().SetGroupVersionKind(q.res.GVK)
	writeJSON(w, code, obj)
}

// decodeBody reads the object of a create or update, checking that it is of
// the path's kind and names the path's namespace and name.
func (s *Server) decodeBody(r *http.Request, q *request) (store.Object, error) {
	if q.verb == "patch" {
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", q.groupResource(), q.name,
			"keelson does not take patches: send the whole object with update", 0, false)
	}
	obj, err := q.res.New()
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("read body: %v", err))
	}
	if len(body) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the body is over %d bytes", maxBodyBytes))
	}
	// client-go sends protobuf or JSON; the scheme's deserializer reads both.
	_, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(body, &q.res.GVK, obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("decode %s: %v", q.res.GVK.Kind, err))
	}
	if gvk != nil && *gvk != q.res.GVK {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is a %s, the path is for %s", gvk, q.res.GVK))
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(q.namespace)
	}
	if obj.GetNamespace() != q.namespace {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body's namespace %q does not match the path's %q", obj.GetNamespace(), q.namespace))
	}
	if q.name != "" && obj.GetName() != q.name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body's name %q does not match the path's %q", obj.GetName(), q.name))
	}
	return obj, nil
}

func describe(q *request) string {
	s := q.res.Plural
	if q.subresource != "" {
		s += "/" + q.subresource
	}
	if q.name != "" {
		s += " " + join(q.namespace, q.name)
	}
	return s
}

func join(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}
