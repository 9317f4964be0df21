package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/agent"
	"github.com/keelson/keelson/agent/network"
)

// tmpfsDataDir is a file system of size for a node's data dir, so that a
// test fills it without filling the machine's. It goes after the node
// stops: its cleanup is registered before startNode's.
func tmpfsDataDir(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size); err != nil {
		t.Skipf("mount a tmpfs for the data dir: %v", err)
	}
	t.Cleanup(func() {
		// The network namespaces of pods still running are mounted in it.
		nss, _ := filepath.Glob(filepath.Join(dir, "netns", "*"))
		for _, ns := range nss {
			if err := network.RemoveNetNS(ns); err != nil {
				t.Errorf("remove netns: %v", err)
			}
		}
		if err := unix.Unmount(dir, 0); err != nil {
			t.Logf("unmount %s: %v; detaching it", dir, err)
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		}
	})
	return dir
}

// conditionWatch follows one condition of the node, as often as the
// heartbeat can change it, and tells whether it was seen True.
type conditionWatch struct {
	mu   sync.Mutex
	seen bool // True since the last reset
	now  corev1.ConditionStatus
}

func watchCondition(t *testing.T, n *node, typ corev1.NodeConditionType) *conditionWatch {
	w := &conditionWatch{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			var node corev1.Node
			if err := n.store.Get(t.Context(), "", n.name, &node); err == nil {
				st := nodeCondition(&node, typ).Status
				w.mu.Lock()
				w.now, w.seen = st, w.seen || st == corev1.ConditionTrue
				w.mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return w
}

// wentTrueThenFalse waits for the condition, once seen True since the
// last reset, to be False again.
func (w *conditionWatch) wentTrueThenFalse(t *testing.T, typ corev1.NodeConditionType) {
	t.Helper()
	eventually(t, string(typ)+" True, then False again", func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.seen || w.now != corev1.ConditionFalse {
			return fmt.Sprintf("seen True: %v, now %q", w.seen, w.now)
		}
		w.seen = false
		return ""
	})
}

// waitEvicted waits for the pod to fail as evicted with a message that
// names what the node was low on, and for its eviction event.
func waitEvicted(t *testing.T, n *node, name, lowOn string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	eventually(t, name+" evicted for "+lowOn, func() string {
		if err := n.store.Get(t.Context(), "default", name, &p); err != nil {
			return err.Error()
		}
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "Evicted" || !strings.Contains(p.Status.Message, "The node was low on resource: "+lowOn+".") {
			return fmt.Sprintf("status %s %s %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		return ""
	})
	eventually(t, name+"'s Evicted event", func() string {
		evs, err := n.admin.CoreV1().Events("default").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == name && e.Reason == "Evicted" && e.Message == p.Status.Message {
				return ""
			}
		}
		return fmt.Sprintf("no Evicted event for %s in %d events", name, len(evs.Items))
	})
	return &p
}

// stillRunning fails unless each pod runs, not evicted.
func stillRunning(t *testing.T, n *node, names ...string) {
	t.Helper()
	for _, name := range names {
		p := getPodE2E(t, n, name)
		if p.Status.Phase != corev1.PodRunning || p.Status.Reason != "" {
			t.Errorf("%s: %s %s %q, want it running", name, p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
	}
}

func shPod(name, script string) *corev1.Pod {
	p := sleeperPod(name)
	p.Spec.Containers[0].Command = []string{"sh", "-c", script}
	return p
}

func withEmptyDir(p *corev1.Pod) *corev1.Pod {
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: "/data"})
	return p
}

func guaranteed(p *corev1.Pod, cpu, memory string) *corev1.Pod {
	l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: l, Limits: l.DeepCopy()}
	return p
}

func createPods(t *testing.T, n *node, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if err := n.store.Create(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pods {
		waitRunning(t, n, p.Name)
	}
}

// TestEvictionUnderDiskPressure: on a node whose data dir is a 256Mi file
// system with nodefs.available<100Mi, what a pod that is gone left there is
// removed first and no pod is evicted for it; then a BestEffort pod that
// fills its emptyDir is evicted, not the pod that logged more, nor the
// Guaranteed one within its ephemeral-storage request; its emptyDir goes
// with it, so the pressure ends. DiskPressure is True, then False, each
// time.
func TestEvictionUnderDiskPressure(t *testing.T) {
	root := tmpfsDataDir(t, "256m")
	n := startNode(t, "node-1", "10.99.20.0/24", func(c *agent.Config) {
		c.RootDir = root
		c.Eviction, _ = agent.ParseEviction("nodefs.available<100Mi")
	})
	pressure := watchCondition(t, n, corev1.NodeDiskPressure)
	quiet := guaranteed(withEmptyDir(shPod("quiet", "dd if=/dev/zero of=/data/keep bs=1M count=8 && exec sleep 3600")), "10m", "64Mi")
	quiet.Spec.Containers[0].Resources.Requests[corev1.ResourceEphemeralStorage] = resource.MustParse("32Mi")
	// More logs, and more processes, than the writer will have.
	chatty := shPod("chatty", "yes 0123456789abcdef0123456789abcdef | head -c 4000000; for i in 1 2 3 4 5 6; do sleep 3600 & done; wait")
	createPods(t, n, quiet, chatty)
	eventually(t, "chatty's logs on the data dir", func() string {
		logs := filepath.Join(root, "pods", string(getPodE2E(t, n, "chatty").UID), "logs")
		if used := dirBytes(logs); used < 3<<20 {
			return fmt.Sprintf("%d bytes in %s", used, logs)
		}
		return ""
	})

	// A pod that went while the agent was away left 180Mi behind, all at
	// once: a file written bit by bit would hold the space after its
	// removal until it is closed.
	gone := filepath.Join(root, "pods", "0f1e2d3c-gone")
	fillFile(t, filepath.Join(gone, "volumes", "empty-dir", "scratch", "fill"), 180<<20)
	eventually(t, "the files of the pod that is gone removed", func() string {
		if _, err := os.Stat(gone); err == nil {
			return "still there"
		}
		return ""
	})
	pressure.wentTrueThenFalse(t, corev1.NodeDiskPressure)
	stillRunning(t, n, "quiet", "chatty")

	writer := withEmptyDir(shPod("writer", "dd if=/dev/zero of=/data/fill bs=1M count=200; exec sleep 3600"))
	if err := n.store.Create(t.Context(), writer); err != nil {
		t.Fatal(err)
	}
	p := waitEvicted(t, n, "writer", "ephemeral-storage")
	t.Logf("writer: %s", p.Status.Message)
	eventually(t, "the writer's emptyDir removed", func() string {
		if _, err := os.Stat(filepath.Join(root, "pods", string(p.UID))); err == nil {
			return "its pod dir is still there"
		}
		return ""
	})
	pressure.wentTrueThenFalse(t, corev1.NodeDiskPressure)
	stillRunning(t, n, "quiet", "chatty")
}

// fillFile makes a file of size bytes, allocated in one call.
func fillFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Fatal(err)
	}
}

// dirBytes is what the files under dir hold.
func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// pidsAvailable is the node's pid.available as the agent reads it.
func pidsAvailable(t *testing.T) int64 {
	t.Helper()
	read := func(path string) int64 {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	limit := min(read("/proc/sys/kernel/pid_max"), read("/proc/sys/kernel/threads-max"))
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	return limit - int64(si.Procs)
}

// pidTestLock keeps two runs of TestEvictionUnderPIDPressure on one
// machine apart: each would put the other's node under pressure.
func pidTestLock(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "keelson-e2e-pid-pressure.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// processesWith counts the machine's processes whose command line is argv.
func processesWith(argv ...string) int {
	want := []byte(strings.Join(argv, "\x00") + "\x00")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	count := 0
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, want) {
			count++
		}
	}
	return count
}

// TestEvictionUnderPIDPressure: with pid.available's threshold pidMargin
// below what the machine has free, far from what the other tests running
// beside this one start and stop, a Guaranteed pod that forks twice that
// many sleeping processes is evicted, not the BestEffort pod beside it,
// and every process of it is gone. PIDPressure is True, then False.
func TestEvictionUnderPIDPressure(t *testing.T) {
	const pidMargin = 3000
	const forks = 2 * pidMargin
	pidTestLock(t)
	free := pidsAvailable(t)
	if free-forks < 4000 {
		t.Skipf("the machine has %d process IDs free: too few to fork %d and leave the rest room", free, forks)
	}
	n := startNode(t, "node-1", "10.99.21.0/24", func(c *agent.Config) {
		c.Eviction, _ = agent.ParseEviction(fmt.Sprintf("pid.available<%d", free-pidMargin))
	})
	pressure := watchCondition(t, n, corev1.NodePIDPressure)
	createPods(t, n, sleeperPod("quiet"))
	if c := nodeCondition(getNodeE2E(t, n), corev1.NodePIDPressure); c.Status != corev1.ConditionFalse {
		t.Fatalf("PIDPressure %s before any pod forks: %d free of a threshold of %d", c.Status, pidsAvailable(t), free-pidMargin)
	}
	// Sleeps of a length of this process's own, to find them again.
	marker := strconv.Itoa(100000 + os.Getpid())
	forker := guaranteed(shPod("forker", fmt.Sprintf(
		"for j in 1 2 3 4; do (for i in $(seq %d); do sleep %s & done; wait) & done; wait", forks/4, marker)), "1", "2Gi")
	if err := n.store.Create(t.Context(), forker); err != nil {
		t.Fatal(err)
	}
	p := waitEvicted(t, n, "forker", "pids")
	t.Logf("forker: %s (%d forked at most)", p.Status.Message, forks)
	eventually(t, "every process of the evicted pod gone", func() string {
		if left := processesWith("sleep", marker); left > 0 {
			return fmt.Sprintf("%d of its sleeps left", left)
		}
		return ""
	})
	pressure.wentTrueThenFalse(t, corev1.NodePIDPressure)
	stillRunning(t, n, "quiet")
	for _, c := range mustList(t, n) {
		if c == p.UID {
			t.Error("the evicted pod's containers are still on the node")
		}
	}
}

// mustList is the pod UIDs of the node's containers.
func mustList(t *testing.T, n *node) []types.UID {
	t.Helper()
	cs, err := n.rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []types.UID
	for _, c := range cs {
		out = append(out, types.UID(c.Spec.PodUID))
	}
	return out
}
