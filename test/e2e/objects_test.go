package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/store"
)

// TestPodObjectsReadByWatch: a running pod's ConfigMap and Secret volumes
// are checked at every sync of the pod without asking the API: the agent
// watches the two objects (one watch each) and reads its copies. A change
// of the ConfigMap reaches the file in the pod's volume through the watch,
// with the pod's resync a minute away, and so does the creation of a
// ConfigMap a waiting container's environment names.
func TestPodObjectsReadByWatch(t *testing.T) {
	n := startNode(t, "node-1", "10.99.31.0/24", func(c *agent.Config) { c.Resync = time.Minute })
	ctx := t.Context()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "conf"}, Data: map[string]string{"greeting": "hello"}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")}}
	if err := n.store.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := n.store.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	p := sleeperPod("reader")
	p.Spec.Volumes = []corev1.Volume{
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
	}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/conf"}, {Name: "creds", MountPath: "/etc/creds"}}
	if err := n.store.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, n, "reader")

	const (
		cmPath     = "/api/v1/namespaces/default/configmaps/conf"
		secretPath = "/api/v1/namespaces/default/secrets/creds"
	)
	gets := func() (int, int) {
		return n.api.requests("GET", cmPath, false), n.api.requests("GET", secretPath, false)
	}
	cmGets, secretGets := gets()
	// Ten syncs of the running pod, each checking its volumes: a change of
	// the pod (an annotation) makes one.
	for i := range 10 {
		var cur corev1.Pod
		if err := n.store.Get(ctx, "default", "reader", &cur); err != nil {
			t.Fatal(err)
		}
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, "example.com/round", fmt.Sprint(i))
		if err := n.store.Update(ctx, &cur); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c, s := gets(); c != cmGets || s != secretGets {
		t.Errorf("over ten syncs of the running pod the agent asked the API for the ConfigMap %d times and the Secret %d times, want 0",
			c-cmGets, s-secretGets)
	}
	for _, path := range []string{"/api/v1/namespaces/default/configmaps", "/api/v1/namespaces/default/secrets"} {
		if w := n.api.requests("GET", path, true); w != 1 {
			t.Errorf("%d watches of %s, want 1", w, path)
		}
	}

	// A change reaches the volume without waiting for the resync.
	var cur corev1.Pod
	if err := n.store.Get(ctx, "default", "reader", &cur); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(n.root, "pods", string(cur.UID), "volumes", "projected", "conf", "greeting")
	if b, err := os.ReadFile(file); err != nil || string(b) != "hello" {
		t.Fatalf("%s: %q, %v; want hello", file, b, err)
	}
	if err := n.store.Get(ctx, "default", "conf", cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["greeting"] = "bonjour"
	if err := n.store.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new greeting in the pod's volume", func() string {
		b, err := os.ReadFile(file)
		if err != nil || string(b) != "bonjour" {
			return fmt.Sprintf("%q, %v", b, err)
		}
		return ""
	})

	// A container whose environment names a ConfigMap that is not there
	// waits; it starts once the ConfigMap is written, without waiting for
	// the resync.
	waiter := sleeperPod("waiter")
	waiter.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "COLOUR", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "later"}, Key: "colour"}}}}
	if err := n.store.Create(ctx, waiter); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the waiter's container waiting for its ConfigMap", func() string {
		var cur corev1.Pod
		if err := n.store.Get(ctx, "default", "waiter", &cur); err != nil {
			return err.Error()
		}
		for _, c := range cur.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil && w.Reason == "CreateContainerConfigError" {
				return ""
			}
		}
		return fmt.Sprintf("statuses %+v", cur.Status.ContainerStatuses)
	})
	later := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "later"}, Data: map[string]string{"colour": "teal"}}
	if err := n.store.Create(ctx, later); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, n, "waiter")

	// The pods leave, and their volumes with them (the secret's tmpfs among
	// them).
	pods, _ := store.ResourceByName("pods")
	for _, name := range []string{"reader", "waiter"} {
		if err := n.store.Delete(ctx, pods, "default", name, nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the pod's directory removed", func() string {
		if _, err := os.Stat(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(file))))); !os.IsNotExist(err) {
			return fmt.Sprintf("stat: %v", err)
		}
		return ""
	})
}
