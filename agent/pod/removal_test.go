package pod_test

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestRemovalLeavesNoMount: a running pod holds mounts under the agent's
// data dir (its network namespace, a memory emptyDir, a secret's tmpfs);
// once it is killed, none is left, and none of its containers.
func TestRemovalLeavesNoMount(t *testing.T) {
	lookup := objects{secrets: map[string]*corev1.Secret{"default/creds": {Data: map[string][]byte{"password": []byte("s3cret")}}}}
	e := newEnv(t, lookup)
	p := newPod("leaves", corev1.RestartPolicyAlways, ctr("main", "sleep", "3600"))
	size := resource.MustParse("8Mi")
	p.Spec.Volumes = []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
	}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}, {Name: "creds", MountPath: "/creds"}}
	e.syncUntil(t, p, phase(corev1.PodRunning))
	held := mountsUnder(t, e.cfg.RootDir)
	if len(held) < 3 {
		t.Fatalf("a running pod with a network, a memory emptyDir and a secret holds %d mounts under the data dir, want 3 or more: %v", len(held), held)
	}
	if err := e.runner.Kill(t.Context(), p, time.Second); err != nil {
		t.Fatal(err)
	}
	if left := mountsUnder(t, e.cfg.RootDir); len(left) > 0 {
		t.Errorf("mounts left under the data dir after the pod left: %v", left)
	}
	if cs, err := e.rt.ListPod(t.Context(), string(p.UID)); err != nil || len(cs) > 0 {
		t.Errorf("containers left after the pod left: %v %v", cs, err)
	}
}

// mountsUnder lists the mount points below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}
