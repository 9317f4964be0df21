package pod_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/keelson/keelson/agent/registry/registrytest"
	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerd"
)

// events collects what a runner records, as "Type Reason: message".
type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) Event(obj k8sruntime.Object, typ, reason, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, fmt.Sprintf("%s/%s %s %s: %s", obj.(*corev1.Pod).Name, typ, reason, "", msg))
}

// of returns the reasons recorded for a pod, in order, each once.
func (e *events) of(name string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		pod, rest, _ := strings.Cut(ev, "/")
		reason := strings.Fields(rest)[1]
		if pod == name && (len(out) == 0 || out[len(out)-1] != reason) {
			out = append(out, reason)
		}
	}
	return out
}

func (e *events) find(name, reason string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if strings.HasPrefix(ev, name+"/") && strings.Contains(ev, " "+reason+" ") {
			return ev
		}
	}
	return ""
}

func dockerConfigSecret(name, host, user, pass string) *corev1.Secret {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, host, auth)},
	}
}

// TestPullSecrets runs pods whose image is in a registry that wants a
// password: with the pod's pull secret, with its ServiceAccount's, and
// with a wrong one, which waits in ErrImagePull, then ImagePullBackOff,
// with the registry's refusal; the pods' events tell the story.
func TestPullSecrets(t *testing.T) {
	reg := registrytest.Start(t, map[string]string{"puller": "s3cret"})
	image := reg.PushBusybox(t, "private/app", "1")
	lookup := objects{
		secrets: map[string]*corev1.Secret{
			"default/right": dockerConfigSecret("right", reg.Host, "puller", "s3cret"),
			"default/wrong": dockerConfigSecret("wrong", reg.Host, "puller", "guess"),
		},
		accounts: map[string]*corev1.ServiceAccount{
			"default/builder": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "builder"},
				ImagePullSecrets: []corev1.LocalObjectReference{{Name: "right"}}},
		},
	}
	e := newEnv(t, lookup, containerd.WithRegistries(reg.Registries(t)))
	rec := &events{}
	cfg := e.cfg
	cfg.Recorder = rec
	e.setRunner(t, cfg)

	withSecret := newPod("with-secret", corev1.RestartPolicyAlways, corev1.Container{Name: "main", Image: image, Command: []string{"sleep", "3600"}})
	withSecret.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "missing"}, {Name: "right"}}
	cleanup(t, e, withSecret)
	e.syncUntil(t, withSecret, phase(corev1.PodRunning))
	if got, want := rec.of("with-secret"), []string{"FailedToRetrieveImagePullSecret", "Pulling", "Pulled", "Created", "Started"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if ev := rec.find("with-secret", "Pulled"); !strings.Contains(ev, fmt.Sprintf("Successfully pulled image %q in ", image)) {
		t.Errorf("the Pulled event: %q", ev)
	}

	// The image is on the node now: pull it again with the account's
	// secret, as Always says.
	fromAccount := newPod("from-account", corev1.RestartPolicyAlways, corev1.Container{Name: "main", Image: image, Command: []string{"sleep", "3600"}})
	fromAccount.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	fromAccount.Spec.ServiceAccountName = "builder"
	cleanup(t, e, fromAccount)
	before := reg.ManifestRequests("private/app")
	e.syncUntil(t, fromAccount, phase(corev1.PodRunning))
	if reg.ManifestRequests("private/app") == before {
		t.Error("pull policy Always did not ask the registry")
	}

	wrong := newPod("wrong", corev1.RestartPolicyAlways, corev1.Container{Name: "main", Image: image, Command: []string{"sleep", "3600"}})
	wrong.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	wrong.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "wrong"}}
	cleanup(t, e, wrong)
	var reasons []string
	st := e.syncUntil(t, wrong, func(st corev1.PodStatus) bool {
		w := st.ContainerStatuses[0].State.Waiting
		if w != nil && (len(reasons) == 0 || reasons[len(reasons)-1] != w.Reason) {
			reasons = append(reasons, w.Reason)
		}
		return w != nil && w.Reason == "ImagePullBackOff"
	})
	if want := []string{"ContainerCreating", "ErrImagePull", "ImagePullBackOff"}; !slices.Equal(reasons, want) {
		t.Errorf("waiting reasons %v, want %v", reasons, want)
	}
	msg := st.ContainerStatuses[0].State.Waiting.Message
	if !strings.Contains(msg, "401 Unauthorized") || !strings.Contains(msg, "default/wrong") {
		t.Errorf("the back-off message does not give the registry's reason and the secret: %q", msg)
	}
	if got, want := rec.of("wrong"), []string{"Pulling", "Failed", "BackOff"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// TestOnePullPerImage starts three pods of one image at once: the image is
// pulled once, and the others find it on the node.
func TestOnePullPerImage(t *testing.T) {
	reg := registrytest.Start(t, nil)
	solo := reg.PushBusybox(t, "team/solo", "1")
	shared := reg.PushBusybox(t, "team/shared", "1")
	e := newEnv(t, nil, containerd.WithRegistries(reg.Registries(t)))

	one := newPod("solo", corev1.RestartPolicyAlways, corev1.Container{Name: "main", Image: solo, Command: []string{"sleep", "3600"}})
	cleanup(t, e, one)
	e.syncUntil(t, one, phase(corev1.PodRunning))
	perPull := reg.ManifestRequests("team/solo")

	var pods []*corev1.Pod
	for i := range 3 {
		p := newPod(fmt.Sprintf("shared-%d", i), corev1.RestartPolicyAlways, corev1.Container{Name: "main", Image: shared, Command: []string{"sleep", "3600"}})
		cleanup(t, e, p)
		pods = append(pods, p)
	}
	for _, p := range pods { // each asks for the image before any pull ends
		st, err := e.runner.Sync(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		p.Status = st
	}
	for _, p := range pods {
		e.syncUntil(t, p, phase(corev1.PodRunning))
	}
	if got := reg.ManifestRequests("team/shared"); got != perPull {
		t.Errorf("three pods of one image made %d manifest requests; one pull makes %d", got, perPull)
	}
	// A pull lets go of its image's lock just after it reports its end.
	for deadline := time.Now().Add(5 * time.Second); e.runner.ImagesInFlight() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the puller keeps locks of %d images after every pull ended", e.runner.ImagesInFlight())
		}
	}
}

// heldPull is a runtime whose pulls, once the image is stored, wait for
// release before they return: the moment a pod can see the image on the
// node while its pull has not yet said it ended.
type heldPull struct {
	runtime.Runtime
	stored  chan struct{}
	release chan struct{}
}

func (h heldPull) Pull(ctx context.Context, ref string, opts runtime.PullOptions) (runtime.Image, error) {
	img, err := h.Runtime.Pull(ctx, ref, opts)
	close(h.stored)
	<-h.release
	return img, err
}

// TestPulledWhileStored syncs a pod after its image is stored and before
// its pull returns: the pod waits for the pull, which ends with the
// Pulled event, rather than running the image as one already there.
func TestPulledWhileStored(t *testing.T) {
	reg := registrytest.Start(t, nil)
	image := reg.PushBusybox(t, "team/held", "1")
	e := newEnv(t, nil, containerd.WithRegistries(reg.Registries(t)))
	held := heldPull{Runtime: e.cfg.Runtime, stored: make(chan struct{}), release: make(chan struct{})}
	rec := &events{}
	cfg := e.cfg
	cfg.Runtime, cfg.Recorder = held, rec
	e.setRunner(t, cfg)

	p := newPod("held", corev1.RestartPolicyAlways, corev1.Container{Name: "main", Image: image, Command: []string{"sleep", "3600"}})
	cleanup(t, e, p)
	if _, err := e.runner.Sync(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.stored:
	case <-time.After(30 * time.Second):
		t.Fatal("the pull never stored the image")
	}
	st, err := e.runner.Sync(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ContainerCreating" {
		t.Errorf("while the pull has not returned the container is %+v, want waiting in ContainerCreating", st.ContainerStatuses[0].State)
	}
	close(held.release)
	e.syncUntil(t, p, phase(corev1.PodRunning))
	if got, want := rec.of("held"), []string{"Pulling", "Pulled", "Created", "Started"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}
