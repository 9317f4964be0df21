package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// The read-only commands and kubectl's library against a real `keelson
// server`: over HTTPS with the generated CA and admin token.
func TestGetDescribeKubeconfigAgainstServer(t *testing.T) {
	dir := t.TempDir()
	api, client, peer := freeAddr(t), etcdtest.FreeURL(t), etcdtest.FreeURL(t)
	p := start(t, "server", "--data-dir", dir, "--listen", api, "--etcd-listen-client", client, "--etcd-listen-peer", peer)
	defer p.stop(t)
	readyz(t, p, api, 200)
	withStore(t, client, func(s *store.Store) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "web", Image: "localhost/web:1"}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.5"},
		}
		if err := s.Create(t.Context(), pod); err != nil {
			t.Fatal(err)
		}
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1.1"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-1"},
			Type:           "Normal", Reason: "Started", Message: "Started container web"}
		if err := s.Create(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	})
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binary, append(args, "--data-dir", dir)...).CombinedOutput()
		if err != nil {
			t.Fatalf("keelson %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("get", "pods", "-A")
	for _, want := range []string{"NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "shop", "web-1", "0/1", "Running"} {
		if !strings.Contains(out, want) {
			t.Errorf("keelson get pods -A lacks %q:\n%s", want, out)
		}
	}
	if out := run("get", "po", "-n", "shop", "-o", "wide", "-l", "app=web"); !strings.Contains(out, "10.42.0.5") || !strings.Contains(out, "n1") {
		t.Errorf("keelson get po -o wide lacks the IP and node:\n%s", out)
	}
	if out := run("get", "pod", "web-1", "-n", "shop", "-o", "yaml"); !strings.Contains(out, "image: localhost/web:1") {
		t.Errorf("keelson get -o yaml:\n%s", out)
	}
	if out := run("describe", "pod", "web-1", "-n", "shop"); !strings.Contains(out, "Started container web") || !strings.Contains(out, "app=web") {
		t.Errorf("keelson describe lacks labels or events:\n%s", out)
	}

	watchGet(t, dir, client)

	kc := run("kubeconfig", "--server", "https://"+api)
	rc, err := clientcmd.RESTConfigFromKubeConfig([]byte(kc))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Pods("shop").List(t.Context(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("client-go with `keelson kubeconfig`: %v, %d pods", err, len(list.Items))
	}
	err = cs.CoreV1().Pods("shop").Delete(t.Context(), "web-1", metav1.DeleteOptions{})
	if !apierrors.IsMethodNotSupported(err) {
		t.Fatalf("delete through the API: %v, want 405", err)
	}
	if _, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "admin.kubeconfig")); err != nil {
		t.Fatalf("the server's admin kubeconfig: %v", err)
	}
}

func TestServerAPIFlagErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "authz.yaml")
	if err := os.WriteFile(bad, []byte("grants:\n- users: [a]\n  namespacez: [x]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortKey := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(shortKey, []byte("keys:\n- name: k1\n  secret: c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"plain HTTP off loopback", []string{"--tls=false", "--listen", "0.0.0.0:" + strings.Split(freeAddr(t), ":")[1]}, "--tls=false is only for a loopback"},
		{"missing token file", []string{"--token-auth-file", filepath.Join(t.TempDir(), "none.csv")}, "token file"},
		{"bad authorization file", []string{"--authorization-file", bad}, "namespacez"},
		{"missing encryption key file", []string{"--encryption-key-file", filepath.Join(t.TempDir(), "none.yaml")}, "--encryption-key-file: encryption key file: open"},
		{"bad encryption key file", []string{"--encryption-key-file", shortKey}, "keys[0] (k1): secret: want 32 random bytes in base64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"server", "--data-dir", t.TempDir(), "--listen", freeAddr(t),
				"--etcd-listen-client", etcdtest.FreeURL(t), "--etcd-listen-peer", etcdtest.FreeURL(t)}
			p := start(t, append(args, tc.args...)...)
			if code := p.wait(t); code != 1 {
				t.Fatalf("exit code %d, want 1:\n%s", code, p.out)
			}
			if !strings.Contains(p.out.String(), tc.want) {
				t.Fatalf("output does not say %q:\n%s", tc.want, p.out)
			}
		})
	}
}

// watchGet runs `keelson get pods -w` and sees a pod written after it started.
func watchGet(t testing.TB, dir, etcdURL string) {
	t.Helper()
	cmd := exec.Command(binary, "get", "pods", "-n", "shop", "-w", "--data-dir", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("keelson get -w ended before showing %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("keelson get -w never showed %q", want)
			}
		}
	}
	waitLine("web-1")
	withStore(t, etcdURL, func(s *store.Store) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-2"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "localhost/web:1"}}}}
		if err := s.Create(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	})
	waitLine("web-2")
}
