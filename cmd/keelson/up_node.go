package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/runtime/containerd"
)

// runLocalNode runs keelson up's node: containerd (the machine's, or one it
// supervises), the images to import, then the agent once the API answers.
// It returns when ctx ends or the agent fails, after stopping containerd.
func runLocalNode(ctx context.Context, o *upOptions, p *progress, log *slog.Logger, serverDone <-chan struct{}) error {
	stopContainerd, err := ensureContainerd(ctx, o, p, log)
	if err != nil {
		return err
	}
	defer stopContainerd()
	if len(o.images) > 0 {
		if err := importArchives(ctx, io.Discard, o.agent.socket, containerd.DefaultNamespace, o.images); err != nil {
			return fmt.Errorf("--import-image: %w", err)
		}
		log.Info("images imported", "archives", o.images)
	}
	client, err := waitAPI(ctx, &o.agent, serverDone)
	if err != nil {
		return err
	}
	p.set(stepEtcd, true, "etcd ready, API serving on %s", o.agent.servers[0])
	p.setHints(lookHints(o))
	go watchCluster(ctx, client, o.agent.nodeName, p)
	return runAgent(ctx, &o.agent, log)
}

// ensureContainerd uses the containerd on --containerd-socket when one
// answers there; otherwise it starts its own under the data dir, and points
// the agent at it. The returned func stops it.
func ensureContainerd(ctx context.Context, o *upOptions, p *progress, log *slog.Logger) (func(), error) {
	if answers(o.agent.socket) {
		p.set(stepContainerd, true, "containerd ready at %s", o.agent.socket)
		return func() {}, nil
	}
	sup := newSupervisor(o.server.dataDir, log)
	if answers(sup.socket) {
		// One that an earlier keelson up started and that outlived it.
		o.agent.socket = sup.socket
		p.set(stepContainerd, true, "containerd ready at %s (already running; not supervised)", sup.socket)
		return func() {}, nil
	}
	if err := sup.prepare(); err != nil {
		return nil, err
	}
	log.Info("no containerd answers, starting one", "socket", o.agent.socket, "own_socket", sup.socket)
	p.set(stepContainerd, false, "no containerd at %s: starting keelson's own", o.agent.socket)
	o.agent.socket = sup.socket
	// It stops after the agent, so not with ctx.
	supCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	go sup.run(supCtx)
	stopAndWait := func() { stop(); <-sup.done }
	select {
	case <-sup.ready:
		p.set(stepContainerd, true, "containerd ready (started by keelson up: %s)", sup.socket)
		return stopAndWait, nil
	case <-sup.done:
		stop()
		return nil, fmt.Errorf("containerd did not start: see %s", filepath.Join(sup.dir, "containerd.log"))
	case <-ctx.Done():
		stopAndWait()
		return nil, ctx.Err()
	}
}

// waitAPI waits until the API answers /readyz, and returns a client of it
// with the node's token.
func waitAPI(ctx context.Context, a *agentOptions, serverDone <-chan struct{}) (kubernetes.Interface, error) {
	token, err := os.ReadFile(a.tokenFile)
	if err != nil {
		return nil, err
	}
	for {
		// The server makes the CA as it starts, in place: a client made
		// while it was half written would never trust it, so each attempt
		// makes its own.
		if a.caFile == "" || fileExists(a.caFile) {
			client, err := agent.NewClient(a.servers, string(token), a.caFile, nil)
			if err != nil {
				return nil, err
			}
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err = client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(rctx).Error()
			cancel()
			if err == nil {
				return client, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-serverDone:
			return nil, errors.New("the control plane stopped")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// lookHints are the commands that show the cluster.
func lookHints(o *upOptions) []string {
	data := o.server.dataDir
	dataFlag := ""
	if data != defaultDataDir() {
		dataFlag = " --data-dir " + data
	}
	source := "the sources of " + o.server.configFile
	if o.server.configFile == "" {
		source = o.server.sync.Repo
		if o.server.sync.Path != "" {
			source += " (" + o.server.sync.Path + ")"
		}
	}
	self := "keelson"
	if strings.Contains(os.Args[0], "/") {
		self = os.Args[0] // as it was run, e.g. make demo's bin/keelson
	}
	hints := []string{
		"  look:   " + self + " get pods -A" + dataFlag,
		"          kubectl --kubeconfig " + adminKubeconfig(data) + " get pods -A",
		"          " + self + " status" + dataFlag + "    (the Sync: what was applied, what failed)",
	}
	if o.server.ui {
		scheme := "https"
		if !o.server.tls {
			scheme = "http"
		}
		hints = append(hints, "          "+scheme+"://"+dialAddr(o.server.listen)+"/ui/    (the web view: sign in with the kubeconfig's token)")
	}
	return append(hints, "  change: commit to "+source)
}

// watchCluster shows the node's readiness and how many pods run, checking
// every second until ctx ends.
func watchCluster(ctx context.Context, client kubernetes.Interface, node string, p *progress) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		n, nodeErr := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if nodeErr == nil {
			if nodeReady(n) {
				p.set(stepNode, true, "node %s Ready", node)
			} else {
				p.set(stepNode, false, "node %s not ready yet", node)
			}
		}
		if pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err == nil {
			done, text := podsLine(pods.Items)
			p.set(stepPods, done, "%s", text)
		}
		if nodeErr == nil {
			if svcs, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err == nil {
				done, text := servicesLine(svcs.Items, internalIP(n))
				p.set(stepServices, done, "%s", text)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// servicesLine says how many services have their address, and where the
// TCP node ports of the first few are open, from this machine: the way in to
// what runs. A UDP node port (one number may serve both) is no http link.
func servicesLine(svcs []corev1.Service, nodeIP string) (bool, string) {
	var pending int
	var open []string
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.ClusterIP == "" {
			pending++
		}
		for _, port := range s.Spec.Ports {
			tcp := port.Protocol == "" || port.Protocol == corev1.ProtocolTCP
			if port.NodePort != 0 && tcp && nodeIP != "" {
				open = append(open, fmt.Sprintf("http://%s:%d (%s/%s)", nodeIP, port.NodePort, s.Namespace, s.Name))
			}
		}
	}
	text := fmt.Sprintf("services %d/%d with an address", len(svcs)-pending, len(svcs))
	if len(open) > 0 {
		text += "; node ports: " + strings.Join(open[:min(2, len(open))], ", ")
		if len(open) > 2 {
			text += fmt.Sprintf(" and %d more", len(open)-2)
		}
	}
	return pending == 0, text
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// podsLine says how many pods run of those meant to, and how many finished
// (the pods of Jobs): "pods 21/21 running, 5 completed".
func podsLine(pods []corev1.Pod) (done bool, text string) {
	var running, completed, failed int
	for _, pod := range pods {
		switch pod.Status.Phase {
		case corev1.PodRunning:
			running++
		case corev1.PodSucceeded:
			completed++
		case corev1.PodFailed:
			failed++
		}
	}
	live := len(pods) - completed - failed
	text = fmt.Sprintf("pods %d/%d running", running, live)
	if completed > 0 {
		text += fmt.Sprintf(", %d completed", completed)
	}
	if failed > 0 {
		text += fmt.Sprintf(", %d failed", failed)
	}
	return len(pods) > 0 && running == live, text
}
