package pod_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// tokenIssuer plays the API's token endpoint: each request gets a new token,
// "token-<n>", that expires expirationSeconds after the clock's now; err
// fails the requests.
type tokenIssuer struct {
	clock    clock.PassiveClock
	err      error
	requests []tokenRequest
}

type tokenRequest struct {
	pod        types.UID
	audiences  []string
	expiration int64
}

func (o objects) ServiceAccountToken(_ context.Context, p *corev1.Pod, audiences []string, expirationSeconds int64) (string, time.Time, error) {
	ti := o.tokens
	if ti == nil {
		return "", time.Time{}, errors.New("no tokens in this test")
	}
	if ti.err != nil {
		return "", time.Time{}, ti.err
	}
	ti.requests = append(ti.requests, tokenRequest{pod: p.UID, audiences: audiences, expiration: expirationSeconds})
	return fmt.Sprintf("token-%d", len(ti.requests)), ti.clock.Now().Add(time.Duration(expirationSeconds) * time.Second), nil
}

const (
	apiAccess = "kube-api-access-x7k2p"
	tokenDir  = "/var/run/secrets/kubernetes.io/serviceaccount"
	caPEM     = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
)

// apiAccessVolume is the volume admission gives a pod for the API.
func apiAccessVolume() corev1.Volume {
	return corev1.Volume{Name: apiAccess, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](420),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}
}

// tokenEnv is an env whose runner tells the time by a fake clock, which
// the issuer's tokens expire by too.
func tokenEnv(t *testing.T) (*env, *clocktesting.FakePassiveClock, *tokenIssuer, *events) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	issuer := &tokenIssuer{clock: clk}
	e := newEnv(t, objects{
		cms:    map[string]*corev1.ConfigMap{"default/kube-root-ca.crt": {Data: map[string]string{"ca.crt": caPEM}}},
		tokens: issuer,
	})
	rec := &events{}
	cfg := e.cfg
	cfg.Clock, cfg.Recorder = clk, rec
	e.setRunner(t, cfg)
	return e, clk, issuer, rec
}

func volumePath(e *env, p *corev1.Pod, name string) string {
	return filepath.Join(e.cfg.RootDir, "pods", string(p.UID), "volumes", "projected", name)
}

// wantFiles checks that a volume holds exactly files, each of mode 0644.
func wantFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, en := range entries {
		if !strings.HasPrefix(en.Name(), "..") {
			n++
		}
	}
	if n != len(files) {
		t.Errorf("%s holds %d files, want %d: %v", dir, n, len(files), entries)
	}
	for name, want := range files {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Errorf("%s holds %q (%v), want %q", path, b, err, want)
			continue
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v (%v), want 0644", path, fi.Mode().Perm(), err)
		}
	}
}

func syncOnce(t *testing.T, e *env, p *corev1.Pod) corev1.PodStatus {
	t.Helper()
	st, err := e.runner.Sync(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	p.Status = st
	return st
}

// TestServiceAccountTokenVolume: a pod's kube-api-access volume holds its
// token, its cluster's CA and its namespace, in memory; the token is kept
// from one sync to the next until 80% of its lifetime has passed, then
// swapped for a new one that the running container reads; WakeAfter says
// when the next rotation is due, the earliest of the pod's tokens.
func TestServiceAccountTokenVolume(t *testing.T) {
	e, clk, issuer, _ := tokenEnv(t)
	start := clk.Now()
	p := newPod("api-client", corev1.RestartPolicyAlways, ctr("main", "sh", "-c", `
		d=`+tokenDir+`
		echo "namespace=$(cat $d/namespace) ca=$(head -n 1 $d/ca.crt)"
		echo "fs=$(awk -v d=$d '$2 == d {print $3}' /proc/mounts)"
		last=
		while :; do
			t=$(cat $d/token)
			if [ "$t" != "$last" ]; then echo "token=$t"; last=$t; fi
			sleep 0.05
		done`))
	p.Spec.ServiceAccountName = "robot"
	vault := corev1.Volume{Name: "vault", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: "vault", ExpirationSeconds: ptr.To[int64](7200), Path: "vault-token"}}},
	}}}
	p.Spec.Volumes = []corev1.Volume{apiAccessVolume(), vault}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: apiAccess, MountPath: tokenDir, ReadOnly: true}, {Name: "vault", MountPath: "/vault", ReadOnly: true}}
	cleanup(t, e, p)
	e.syncUntil(t, p, phase(corev1.PodRunning))
	waitLog(t, e, p, "main", "namespace=default ca=-----BEGIN CERTIFICATE-----\n", "fs=tmpfs\n", "token=token-1\n")

	dir := volumePath(e, p, apiAccess)
	wantFiles(t, dir, map[string]string{"token": "token-1", "ca.crt": caPEM, "namespace": "default"})
	wantFiles(t, volumePath(e, p, "vault"), map[string]string{"vault-token": "token-2"})
	if os.Geteuid() == 0 {
		for _, d := range []string{dir, volumePath(e, p, "vault")} {
			var fs unix.Statfs_t
			if err := unix.Statfs(d, &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
				t.Errorf("token volume %s is not on tmpfs (type %x, %v)", d, fs.Type, err)
			}
		}
	}
	want := []tokenRequest{{pod: p.UID, expiration: 3607}, {pod: p.UID, audiences: []string{"vault"}, expiration: 7200}}
	if !reflect.DeepEqual(issuer.requests, want) {
		t.Fatalf("token requests %+v, want %+v", issuer.requests, want)
	}
	if got, want := e.runner.WakeAfter(p.UID), 3607*time.Second/5*4; got != want {
		t.Errorf("WakeAfter %v, want %v: when 80%% of the API token's lifetime has passed", got, want)
	}

	// Before 80% of its lifetime, the token is kept and nothing is written.
	before, _ := os.Readlink(filepath.Join(dir, "..data"))
	clk.SetTime(start.Add(2885 * time.Second))
	syncOnce(t, e, p)
	if len(issuer.requests) != 2 {
		t.Errorf("%d token requests before the rotation is due, want 2", len(issuer.requests))
	}
	if now, _ := os.Readlink(filepath.Join(dir, "..data")); now != before {
		t.Errorf("the volume was written again (..data %s → %s) with the same token", before, now)
	}
	if got, want := e.runner.WakeAfter(p.UID), 600*time.Millisecond; got != want {
		t.Errorf("WakeAfter %v, want %v", got, want)
	}

	// Past it, a new token is swapped in; the vault token is not due.
	clk.SetTime(start.Add(2886 * time.Second))
	syncOnce(t, e, p)
	if len(issuer.requests) != 3 || issuer.requests[2].audiences != nil {
		t.Fatalf("token requests %+v, want a third for the API", issuer.requests)
	}
	wantFiles(t, dir, map[string]string{"token": "token-3", "ca.crt": caPEM, "namespace": "default"})
	wantFiles(t, volumePath(e, p, "vault"), map[string]string{"vault-token": "token-2"})
	after, _ := os.Readlink(filepath.Join(dir, "..data"))
	if after == before {
		t.Error("the new token was not written by swapping ..data")
	}
	if _, err := os.Stat(filepath.Join(dir, before)); !os.IsNotExist(err) {
		t.Errorf("the files of the old token (%s) are left: %v", before, err)
	}
	waitLog(t, e, p, "main", "token=token-1\ntoken=token-3\n")
	if got, want := e.runner.WakeAfter(p.UID), 7200*time.Second/5*4-2886*time.Second; got != want {
		t.Errorf("WakeAfter %v, want %v: the vault token's rotation, the earlier", got, want)
	}

	// The pod's tokens and their files go with it.
	if err := e.runner.Kill(t.Context(), p, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the token volume %s is left after the pod was killed: %v", dir, err)
	}
	if n := e.runner.Pods(); n != 0 {
		t.Errorf("%d pods keep a runner, and so their tokens, after the pod was killed", n)
	}
}

// TestServiceAccountTokenErrors: a token that cannot be obtained is the
// volume's error, with nothing of the volume written, until it can; a
// token that cannot be renewed is kept while it is valid, and is the
// volume's error once it has expired, its files left whole.
func TestServiceAccountTokenErrors(t *testing.T) {
	e, clk, issuer, rec := tokenEnv(t)
	start := clk.Now()
	p := newPod("no-token", corev1.RestartPolicyAlways, ctr("main", "sleep", "3600"))
	p.Spec.Volumes = []corev1.Volume{apiAccessVolume()}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: apiAccess, MountPath: tokenDir, ReadOnly: true}}
	cleanup(t, e, p)
	dir := volumePath(e, p, apiAccess)

	issuer.err = errors.New("the API is away")
	st := syncOnce(t, e, p)
	w := st.ContainerStatuses[0].State.Waiting
	for _, want := range []string{`volume "` + apiAccess + `"`, "serviceAccountToken token", "the API is away"} {
		if st.Phase != corev1.PodPending || w == nil || !strings.Contains(w.Message, want) {
			t.Fatalf("phase %s, waiting %+v; want a message with %q", st.Phase, w, want)
		}
		if ev := rec.find(p.Name, "FailedMount"); !strings.Contains(ev, want) {
			t.Errorf("FailedMount event %q, want one with %q", ev, want)
		}
	}
	if entries, err := os.ReadDir(dir); len(entries) != 0 || err != nil && !os.IsNotExist(err) {
		t.Errorf("a volume whose token failed holds %v (%v), want nothing", entries, err)
	}
	if w := e.runner.WakeAfter(p.UID); w < 500*time.Millisecond || w > 10*time.Second {
		t.Errorf("WakeAfter %v after a failed request, want the set-up back-off (0.5 s, doubling to 10 s)", w)
	}

	issuer.err = nil
	e.syncUntil(t, p, phase(corev1.PodRunning))
	wantFiles(t, dir, map[string]string{"token": "token-1", "ca.crt": caPEM, "namespace": "default"})

	// Due for rotation but still valid: kept, the pod runs on.
	issuer.err = errors.New("the API is away")
	clk.SetTime(start.Add(3000 * time.Second))
	if st := syncOnce(t, e, p); st.Phase != corev1.PodRunning {
		t.Errorf("phase %s while the token is valid, want Running", st.Phase)
	}
	wantFiles(t, dir, map[string]string{"token": "token-1", "ca.crt": caPEM, "namespace": "default"})

	// Expired: the volume's error; its files stay whole.
	clk.SetTime(start.Add(3607 * time.Second))
	st = syncOnce(t, e, p)
	var msg string
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady {
			msg = c.Message
		}
	}
	if st.Phase != corev1.PodPending || !strings.Contains(msg, "expired") || !strings.Contains(msg, "the API is away") {
		t.Errorf("phase %s, Ready's message %q; want Pending, with the token expired", st.Phase, msg)
	}
	wantFiles(t, dir, map[string]string{"token": "token-1", "ca.crt": caPEM, "namespace": "default"})

	issuer.err = nil
	e.syncUntil(t, p, phase(corev1.PodRunning))
	wantFiles(t, dir, map[string]string{"token": "token-2", "ca.crt": caPEM, "namespace": "default"})
}
