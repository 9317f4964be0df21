package pod_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/agent/network"
	"github.com/keelson/keelson/agent/pod"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

// objects is a Lookup over ConfigMaps, Secrets, Services, claims and
// volumes held in memory, with tokens from an issuer (token_test.go): the
// API's part in the agent, which these tests do not start.
type objects struct {
	cms      map[string]*corev1.ConfigMap
	secrets  map[string]*corev1.Secret
	services []*corev1.Service
	claims   map[string]*corev1.PersistentVolumeClaim
	volumes  map[string]*corev1.PersistentVolume
	accounts map[string]*corev1.ServiceAccount
	tokens   *tokenIssuer // none when nil
}

func (o objects) ServiceAccount(_ context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	if a, ok := o.accounts[ns+"/"+name]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("serviceaccount %s/%s: %w", ns, name, pod.ErrRefNotFound)
}

func (o objects) Claim(_ context.Context, ns, name string) (*corev1.PersistentVolumeClaim, error) {
	if c, ok := o.claims[ns+"/"+name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("persistentvolumeclaim %s/%s: %w", ns, name, pod.ErrRefNotFound)
}

func (o objects) Volume(_ context.Context, name string) (*corev1.PersistentVolume, error) {
	if v, ok := o.volumes[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("persistentvolume %s: %w", name, pod.ErrRefNotFound)
}

func (o objects) Services(_ context.Context, ns string) ([]*corev1.Service, error) {
	var out []*corev1.Service
	for _, s := range o.services {
		if s.Namespace == ns {
			out = append(out, s)
		}
	}
	return out, nil
}

func (o objects) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	if cm, ok := o.cms[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, pod.ErrRefNotFound)
}

func (o objects) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	if s, ok := o.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("secret %s/%s: %w", ns, name, pod.ErrRefNotFound)
}

type env struct {
	rt     *containerd.Runtime
	runner *pod.Runner
	cfg    pod.Config
	socket string
}

const podCIDR = "10.99.8.0/24"

func newEnv(t *testing.T, lookup pod.Lookup, opts ...containerd.Option) *env {
	t.Helper()
	rt, d := containerdtest.NewRuntime(t, opts...)
	root := t.TempDir()
	bridge := fmt.Sprintf("kp%d", os.Getpid()%100000)
	n, err := network.New(network.Config{PodCIDR: podCIDR, Bridge: bridge, DataDir: filepath.Join(root, "cni"), NoMasquerade: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	if lookup == nil {
		lookup = objects{}
	}
	cfg := pod.Config{Runtime: rt, Network: n, Lookup: lookup, NodeName: "node-1", HostIP: "192.0.2.10", RootDir: root}
	e := &env{rt: rt, cfg: cfg, socket: d.Socket}
	e.setRunner(t, cfg)
	return e
}

// setRunner makes the env's runner one of cfg, closed when the test ends.
func (e *env) setRunner(t *testing.T, cfg pod.Config) {
	t.Helper()
	runner, err := pod.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runner.Close)
	e.runner, e.cfg = runner, cfg
}

func newPod(name string, policy corev1.RestartPolicy, containers ...corev1.Container) *corev1.Pod {
	for i := range containers {
		if containers[i].Image == "" {
			containers[i].Image = ociarchive.BusyboxRef
		}
		containers[i].ImagePullPolicy = corev1.PullIfNotPresent
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: "node-1", RestartPolicy: policy, Containers: containers},
	}
}

func ctr(name string, cmd ...string) corev1.Container {
	return corev1.Container{Name: name, Command: cmd}
}

// syncUntil calls Sync until done says the status is what the test waits
// for, checking each observed status with every, and returns the last.
func (e *env) syncUntil(t *testing.T, p *corev1.Pod, done func(corev1.PodStatus) bool, every ...func(corev1.PodStatus)) corev1.PodStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.runner.Sync(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		p.Status = st
		for _, f := range every {
			f(st)
		}
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s never reached the awaited state; last status:\n%+v", p.Name, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func phase(want corev1.PodPhase) func(corev1.PodStatus) bool {
	return func(st corev1.PodStatus) bool { return st.Phase == want }
}

func cleanup(t *testing.T, e *env, p *corev1.Pod) {
	t.Cleanup(func() {
		if err := e.runner.Kill(context.Background(), p, time.Second); err != nil {
			t.Errorf("kill %s: %v", p.Name, err)
		}
	})
}
