package pod

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/keelson/keelson/agent/runtime"
)

// probes is what the probe workers of one running container have found.
type probes struct {
	cancel context.CancelFunc

	mu      sync.Mutex
	ready   bool   // readiness passed (true when there is no readiness probe)
	started bool   // startup passed (true when there is no startup probe)
	failed  string // why liveness or startup failed; the container must go
}

func (p *probes) get() (ready, started bool, failed string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready, p.started, p.failed
}

// ensureProbes starts the probe workers of a running container once, in
// the pod's runner, which ends them.
func (r *Runner) ensureProbes(run *podRunner, p *corev1.Pod, c *corev1.Container, cur runtime.Container, ip string) *probes {
	if pr, ok := run.probes[cur.ID]; ok {
		return pr
	}
	ctx, cancel := context.WithCancel(run.ctx)
	pr := &probes{cancel: cancel, ready: c.ReadinessProbe == nil, started: c.StartupProbe == nil}
	run.probes[cur.ID] = pr
	target := probeTarget{rt: r.cfg.Runtime, id: cur.ID, ip: ip, container: c}
	notify := func() {
		if r.cfg.OnProbeChange != nil {
			r.cfg.OnProbeChange(p.UID)
		}
	}
	unhealthy := func(kind string, err error) {
		r.recordf(p, corev1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s%s probe failed: %v", strings.ToUpper(kind[:1]), kind[1:], err))
	}
	started := func(ok bool) {
		pr.mu.Lock()
		if ok {
			pr.started = true
		} else {
			pr.failed = "Startup probe failed"
		}
		pr.mu.Unlock()
		notify()
	}
	alive := func(ok bool) {
		if !ok {
			pr.mu.Lock()
			pr.failed = "Liveness probe failed"
			pr.mu.Unlock()
			notify()
		}
	}
	ready := func(ok bool) {
		pr.mu.Lock()
		changed := pr.ready != ok
		pr.ready = ok
		pr.mu.Unlock()
		if changed {
			notify()
		}
	}
	for _, w := range []struct {
		kind   string
		probe  *corev1.Probe
		report func(bool)
	}{{"startup", c.StartupProbe, started}, {"liveness", c.LivenessProbe, alive}, {"readiness", c.ReadinessProbe, ready}} {
		if w.probe != nil {
			run.wg.Go(func() { r.probeLoop(ctx, pr, w.kind, w.probe, target, cur.StartedAt, unhealthy, w.report) })
		}
	}
	return pr
}

// stopProbes ends the workers of the pod's containers not in running.
func (run *podRunner) stopProbes(running map[string]bool) {
	for id, pr := range run.probes {
		if !running[id] {
			pr.cancel()
			delete(run.probes, id)
		}
	}
}
func orDefault(v, def int32) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

// probeLoop runs one probe every period after the initial delay, and reports
// when its result flips by the thresholds: successThreshold passes in a row
// make it pass, failureThreshold failures in a row make it fail. Liveness and
// readiness wait for the startup probe to pass; a startup probe stops once it
// has passed.
func (r *Runner) probeLoop(ctx context.Context, pr *probes, kind string, pb *corev1.Probe, t probeTarget, startedAt time.Time, unhealthy func(string, error), report func(bool)) {
	period, timeout := orDefault(pb.PeriodSeconds, 10), orDefault(pb.TimeoutSeconds, 1)
	successes, failures := int32(0), int32(0)
	needOK, needFail := max(pb.SuccessThreshold, 1), pb.FailureThreshold
	if needFail <= 0 {
		needFail = 3
	}
	wait := time.Until(startedAt.Add(time.Duration(pb.InitialDelaySeconds) * time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
		wait = period
		if kind != "startup" {
			if _, started, _ := pr.get(); !started {
				continue
			}
		}
		err := t.run(ctx, &pb.ProbeHandler, timeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			successes, failures = successes+1, 0
			if successes == needOK {
				report(true)
				if kind == "startup" {
					return
				}
			}
			continue
		}
		r.log.Debug("probe failed", "kind", kind, "container", t.container.Name, "err", err)
		unhealthy(kind, err)
		failures, successes = failures+1, 0
		if failures == needFail {
			report(false)
			if kind != "readiness" {
				return
			}
		}
	}
}

// probeTarget is where a container's probes and hooks go.
type probeTarget struct {
	rt        runtime.Runtime
	id, ip    string
	container *corev1.Container
}

// run runs a probe or hook handler once; nil means it passed.
func (t probeTarget) run(ctx context.Context, h *corev1.ProbeHandler, timeout time.Duration) error {
	switch {
	case h.Exec != nil:
		out, code, err := t.rt.Exec(ctx, t.id, h.Exec.Command, timeout)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("command %q exited with %d: %s", h.Exec.Command, code, strings.TrimSpace(string(out)))
		}
		return nil
	case h.HTTPGet != nil:
		return t.httpGet(ctx, h.HTTPGet, timeout)
	case h.TCPSocket != nil:
		port, err := t.port(h.TCPSocket.Port)
		if err != nil {
			return err
		}
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(hostOr(h.TCPSocket.Host, t.ip), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case h.GRPC != nil:
		return t.grpc(ctx, h.GRPC, timeout)
	}
	return fmt.Errorf("the probe names no handler")
}

func hostOr(h, ip string) string {
	if h != "" {
		return h
	}
	return ip
}

// port resolves a port number or the name of one of the container's ports.
func (t probeTarget) port(p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range t.container.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", t.container.Name, p.StrVal)
}

func (t probeTarget) httpGet(ctx context.Context, g *corev1.HTTPGetAction, timeout time.Duration) error {
	port, err := t.port(g.Port)
	if err != nil {
		return err
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(hostOr(g.Host, t.ip), strconv.Itoa(port)), path)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "keelson-probe")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
		} else {
			req.Header.Add(h.Name, h.Value)
		}
	}
	client := &http.Client{Transport: &http.Transport{
		// As the kubelet: probes do not verify certificates, nor keep connections.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		DisableKeepAlives: true,
	}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe %s answered %d", url, resp.StatusCode)
	}
	return nil
}

func (t probeTarget) grpc(ctx context.Context, g *corev1.GRPCAction, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := grpc.NewClient(net.JoinHostPort(t.ip, strconv.Itoa(int(g.Port))), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return err
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC health of %q is %s", service, resp.Status)
	}
	return nil
}

// hook runs a lifecycle handler (postStart, preStop) once, within timeout.
func (t probeTarget) hook(ctx context.Context, h *corev1.LifecycleHandler, timeout time.Duration) error {
	if h.Sleep != nil {
		select {
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		case <-ctx.Done():
		}
		return nil
	}
	return t.run(ctx, &corev1.ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket}, timeout)
}

func hasProbes(c *corev1.Container) bool {
	return c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil
}
