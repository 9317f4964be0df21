package pod_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// waitLog waits until the container's log holds every line of want.
func waitLog(t *testing.T, e *env, p *corev1.Pod, container string, want ...string) string {
	t.Helper()
	path := filepath.Join(e.cfg.RootDir, "pods", string(p.UID), "logs", container+"_0.log")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		missing := ""
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's log lacks %q:\n%s", container, missing, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestVolumes(t *testing.T) {
	lookup := objects{
		cms:     map[string]*corev1.ConfigMap{"default/site": {Data: map[string]string{"index.html": "<h1>v1</h1>", "other": "x"}}},
		secrets: map[string]*corev1.Secret{"default/creds": {Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	e := newEnv(t, lookup)
	hostDir := filepath.Join(t.TempDir(), "made-by-agent")
	p := newPod("vols", corev1.RestartPolicyAlways,
		ctr("writer", "sh", "-c", "echo shared > /scratch/note; exec sleep 3600"),
		ctr("reader", "sh", "-c", `
			until [ -f /scratch/note ]; do sleep 0.05; done
			echo "note=$(cat /scratch/note)"
			echo "page=$(cat /site/page.html)"
			echo "mode=$(stat -L -c %a /site/page.html)"
			echo "secret=$(cat /creds/password)"
			echo "labels=$(cat /info/labels)"
			echo "host=$(ls -d /host)"
			echo "creds-fs=$(awk '$2 == "/creds" {print $3}' /proc/mounts)"
			echo done; exec sleep 3600`))
	p.Labels = map[string]string{"app": "vols"}
	p.Spec.Volumes = []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "site", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "site"},
			Items:                []corev1.KeyToPath{{Key: "index.html", Path: "page.html", Mode: ptr.To[int32](0o600)}},
		}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}},
		}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: hostDir, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}},
	}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	p.Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{
		{Name: "scratch", MountPath: "/scratch"}, {Name: "site", MountPath: "/site", ReadOnly: true},
		{Name: "creds", MountPath: "/creds", ReadOnly: true}, {Name: "info", MountPath: "/info"}, {Name: "host", MountPath: "/host"},
	}
	cleanup(t, e, p)
	e.syncUntil(t, p, phase(corev1.PodRunning))
	waitLog(t, e, p, "reader", "note=shared\n", "page=<h1>v1</h1>\n", "mode=600\n", "secret=s3cret\n", `labels=app="vols"`, "host=/host\n", "creds-fs=tmpfs\n", "done\n")

	// The secret's files are in memory only.
	var fs unix.Statfs_t
	secretDir := filepath.Join(e.cfg.RootDir, "pods", string(p.UID), "volumes", "secret", "creds")
	if err := unix.Statfs(secretDir, &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		t.Fatalf("secret volume %s is not on tmpfs (type %x, %v)", secretDir, fs.Type, err)
	}
	if _, err := os.Stat(hostDir); err != nil {
		t.Fatalf("hostPath DirectoryOrCreate did not create %s: %v", hostDir, err)
	}

	// A changed ConfigMap reaches the mounted file, swapped atomically.
	siteDir := filepath.Join(e.cfg.RootDir, "pods", string(p.UID), "volumes", "projected", "site")
	before, _ := os.Readlink(filepath.Join(siteDir, "..data"))
	lookup.cms["default/site"] = &corev1.ConfigMap{Data: map[string]string{"index.html": "<h1>v2</h1>"}}
	if _, err := e.runner.Sync(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(siteDir, "page.html"))
	if err != nil || string(b) != "<h1>v2</h1>" {
		t.Fatalf("after the ConfigMap changed, page.html holds %q (%v)", b, err)
	}
	after, _ := os.Readlink(filepath.Join(siteDir, "..data"))
	if after == before {
		t.Fatal("the update was not made by swapping ..data")
	}
	if _, err := os.Stat(filepath.Join(siteDir, before)); !os.IsNotExist(err) {
		t.Fatalf("the previous version %s was not removed", before)
	}
}

func TestVolumeErrors(t *testing.T) {
	e := newEnv(t, objects{})
	p := newPod("badvol", corev1.RestartPolicyAlways, ctr("main", "sleep", "3600"))
	p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}}}}}
	cleanup(t, e, p)
	st, err := e.runner.Sync(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	w := st.ContainerStatuses[0].State.Waiting
	if st.Phase != corev1.PodPending || w == nil || !strings.Contains(w.Message, `volume "cfg"`) || !strings.Contains(w.Message, "missing") {
		t.Fatalf("missing ConfigMap: phase %s, waiting %+v", st.Phase, w)
	}
	p.Spec.Volumes[0].ConfigMap.Optional = ptr.To(true)
	p.Status = st
	e.syncUntil(t, p, phase(corev1.PodRunning))
}

// claimed returns a claim bound to a volume of src, both ways.
func claimed(name string, src corev1.PersistentVolumeSource) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("claim-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-" + name}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + name}, Spec: corev1.PersistentVolumeSpec{
		PersistentVolumeSource: src, ClaimRef: &corev1.ObjectReference{Namespace: "default", Name: name, UID: pvc.UID}}}
	return pvc, pv
}

func claimVolume(name, claim string, readOnly bool) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: readOnly}}}
}

// A claim's volume outlives its pod: one pod writes a file into it, a later
// pod of the same claim reads it; a claim mounted readOnly cannot be
// written; a local volume's directory is mounted as well as a hostPath's.
func TestClaimVolumes(t *testing.T) {
	dataDir, localDir := filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "local")
	for _, d := range []string{dataDir, localDir} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	data, dataPV := claimed("data", corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dataDir}})
	local, localPV := claimed("local", corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: localDir}})
	lookup := objects{
		claims:  map[string]*corev1.PersistentVolumeClaim{"default/data": data, "default/local": local},
		volumes: map[string]*corev1.PersistentVolume{dataPV.Name: dataPV, localPV.Name: localPV},
	}
	e := newEnv(t, lookup)

	writer := newPod("writer", corev1.RestartPolicyNever, ctr("main", "sh", "-c", "echo kept > /data/note && echo local > /local/note && echo wrote"))
	writer.Spec.Volumes = []corev1.Volume{claimVolume("data", "data", false), claimVolume("local", "local", false)}
	writer.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "local", MountPath: "/local"}}
	cleanup(t, e, writer)
	e.syncUntil(t, writer, phase(corev1.PodSucceeded))
	if err := e.runner.Kill(t.Context(), writer, 0); err != nil {
		t.Fatal(err)
	}

	reader := newPod("reader", corev1.RestartPolicyNever, ctr("main", "sh", "-c",
		`echo "note=$(cat /data/note) local=$(cat /local/note)"; if echo x > /data/x 2>/dev/null; then echo writable; else echo read-only; fi`))
	reader.Spec.Volumes = []corev1.Volume{claimVolume("data", "data", true), claimVolume("local", "local", false)}
	reader.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "local", MountPath: "/local"}}
	cleanup(t, e, reader)
	e.syncUntil(t, reader, phase(corev1.PodSucceeded))
	waitLog(t, e, reader, "main", "note=kept local=local\n", "read-only\n")
}

// A claim not bound yet, a volume bound to another claim, a directory that
// vanished: the pod waits, with a message that says which and why, and
// nothing is created in the vanished directory's place.
func TestClaimVolumeErrors(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "gone")
	pending := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pending", UID: "u-pending"},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	vanished, vanishedPV := claimed("vanished", corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: gone}})
	localGone, localGonePV := claimed("local-gone", corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: gone}})
	stolen, stolenPV := claimed("stolen", corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: t.TempDir()}})
	stolenPV.Spec.ClaimRef.UID = "someone-else"
	lookup := objects{
		claims: map[string]*corev1.PersistentVolumeClaim{"default/pending": pending, "default/vanished": vanished,
			"default/local-gone": localGone, "default/stolen": stolen},
		volumes: map[string]*corev1.PersistentVolume{vanishedPV.Name: vanishedPV, localGonePV.Name: localGonePV, stolenPV.Name: stolenPV},
	}
	e := newEnv(t, lookup)
	for _, tc := range []struct{ claim, want string }{
		{"missing", `persistentvolumeclaim default/missing`},
		{"pending", `persistentvolumeclaim "pending" is not bound to a volume yet`},
		{"vanished", `persistentvolume "pv-vanished"`},
		{"local-gone", `directory ` + gone + ` is not on this node`},
		{"stolen", `persistentvolume "pv-stolen" is not bound to claim "stolen"`},
	} {
		p := newPod("claim-"+tc.claim, corev1.RestartPolicyAlways, ctr("main", "sleep", "3600"))
		p.Spec.Volumes = []corev1.Volume{claimVolume("data", tc.claim, false)}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		cleanup(t, e, p)
		st, err := e.runner.Sync(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		w := st.ContainerStatuses[0].State.Waiting
		if st.Phase != corev1.PodPending || w == nil || !strings.Contains(w.Message, `volume "data"`) || !strings.Contains(w.Message, tc.want) {
			t.Errorf("claim %s: phase %s, waiting %+v; want a message with %q", tc.claim, st.Phase, w, tc.want)
		}
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("the vanished directory was made again: %v", err)
	}
}
