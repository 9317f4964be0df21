package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// agentClient reaches node agents. As kube-apiserver without
// --kubelet-certificate-authority, it does not verify the agents' self-signed
// certificates; it proves itself to an agent with that node's own token.
var agentClient = &http.Client{Transport: &http.Transport{
	TLSClientConfig:       &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	ResponseHeaderTimeout: 30 * time.Second,
}}

// podLog serves GET /api/v1/namespaces/{ns}/pods/{name}/log, as kubectl logs
// asks for it, by proxying to the agent of the pod's node.
func (s *Server) podLog(w http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	pods := schema.GroupResource{Resource: "pods"}
	var p corev1.Pod
	if err := s.cfg.Store.Get(ctx, q.namespace, q.name, &p); err != nil {
		writeStatus(w, statusError(err, pods, q.name))
		return
	}
	query := r.URL.Query()
	container := query.Get("container")
	if container == "" {
		if len(p.Spec.Containers) != 1 {
			var names []string
			for _, c := range p.Spec.Containers {
				names = append(names, c.Name)
			}
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", p.Name, names)))
			return
		}
		container = p.Spec.Containers[0].Name
	}
	if !hasContainer(&p, container) {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, p.Name)))
		return
	}
	target, token, err := s.agentOf(ctx, p.Spec.NodeName)
	if err != nil {
		writeStatus(w, err)
		return
	}
	forward := url.Values{}
	for _, k := range []string{"follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes"} {
		if v := query.Get(k); v != "" {
			forward.Set(k, v)
		}
	}
	resp, err := agentLog(ctx, target, token, &p, container, forward)
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("the agent of node %s does not answer: %v", p.Spec.NodeName, err)))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		writeStatus(w, apierrors.NewGenericServerResponse(resp.StatusCode, "get", pods, p.Name, strings.TrimSpace(string(msg)), 0, false))
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	limit := int64(-1)
	if v := query.Get("limitBytes"); v != "" {
		limit, _ = strconv.ParseInt(v, 10, 64)
	}
	copyFlushing(w, resp.Body, limit)
}

func hasContainer(p *corev1.Pod, name string) bool {
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

// agentOf is the base URL of a node's agent and the token to call it with.
func (s *Server) agentOf(ctx context.Context, nodeName string) (string, string, error) {
	if nodeName == "" {
		return "", "", apierrors.NewBadRequest("the pod is not scheduled to a node yet: it has no logs")
	}
	var node corev1.Node
	if err := s.cfg.Store.Get(ctx, "", nodeName, &node); err != nil {
		return "", "", statusError(err, schema.GroupResource{Resource: "nodes"}, nodeName)
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	addr := ""
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && addr == "" {
				addr = a.Address
			}
		}
	}
	if port == 0 || addr == "" {
		return "", "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %s does not say where its agent listens", nodeName))
	}
	token, ok := s.cfg.Tokens.tokenOf("system:node:" + nodeName)
	if !ok {
		return "", "", apierrors.NewServiceUnavailable(fmt.Sprintf("no token for node %s in the token file: the API server cannot call its agent", nodeName))
	}
	return "https://" + net.JoinHostPort(addr, strconv.Itoa(int(port))), token, nil
}

// copyFlushing copies the agent's answer to the client as it comes, so a
// followed log streams; limit bounds the bytes copied when not negative.
func copyFlushing(w http.ResponseWriter, r io.Reader, limit int64) {
	if limit >= 0 {
		r = io.LimitReader(r, limit)
	}
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// agentLog asks the agent at target for a container's log, with query
// (tailLines, follow, …) as the kubelet's containerLogs takes it.
func agentLog(ctx context.Context, target, token string, p *corev1.Pod, container string, query url.Values) (*http.Response, error) {
	u := fmt.Sprintf("%s/containerLogs/%s/%s/%s?%s", target, url.PathEscape(p.Namespace), url.PathEscape(p.Name), url.PathEscape(container), query.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return agentClient.Do(req)
}

// TailLog returns the last lines of a container's log, read from the agent
// of the pod's node as `kubectl logs --tail` reads it; the sync shows a
// failed hook's with it. Errors: the pod or its node is unknown, the agent
// does not answer or refuses.
func (s *Server) TailLog(ctx context.Context, namespace, pod, container string, lines int) (string, error) {
	var p corev1.Pod
	if err := s.cfg.Store.Get(ctx, namespace, pod, &p); err != nil {
		return "", err
	}
	target, token, err := s.agentOf(ctx, p.Spec.NodeName)
	if err != nil {
		return "", err
	}
	q := url.Values{"tailLines": {strconv.Itoa(lines)}, "limitBytes": {strconv.Itoa(maxTailBytes)}}
	resp, err := agentLog(ctx, target, token, &p, container, q)
	if err != nil {
		return "", fmt.Errorf("the agent of node %s does not answer: %w", p.Spec.NodeName, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTailBytes))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the agent of node %s answers %s: %s", p.Spec.NodeName, resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// maxTailBytes bounds what TailLog returns.
const maxTailBytes = 16 << 10
