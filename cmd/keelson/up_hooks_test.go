package main

import (
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// hooksWait bounds every wait of TestHooksOnContainerd: a hang guard, not
// a measure (a revision here runs a pod to its end and rolls another).
const hooksWait = 3 * time.Minute

// hookError is what the failing migration prints before it exits 1.
const hookError = "ERROR: relation orders already exists"

// shopApp is one revision of the shop: namespace shop in wave -1; a
// pre-apply Job hook, migrate, whose pod prints "migrating v<migration>"
// and, when failure is set, prints it on stderr and exits 1; and web, one
// long-running pod at version.
func shopApp(migration, failure, version string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: shop
  annotations: {keelson.dev/wave: "-1"}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: shop
  annotations: {keelson.dev/hook: pre-apply}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: migrate
        image: %[1]s
        imagePullPolicy: Never
        env: [{name: MIGRATION, value: %[2]q}, {name: FAILURE, value: %[3]q}]
        command: [sh, -c, 'echo "migrating v$MIGRATION"; if [ -n "$FAILURE" ]; then echo "$FAILURE" >&2; exit 1; fi']
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %[1]s
        imagePullPolicy: IfNotPresent
        env: [{name: VERSION, value: %[4]q}]
        command: [httpd, -f, -p, "8080"]
`, ociarchive.BusyboxRef, migration, failure, version)
}

// TestHooksOnContainerd: waves and a pre-apply hook on keelson up with its
// own containerd. The namespace of wave -1 is there before the migration
// Job, which completes before the Deployment is written, by the store's
// revisions. A commit whose migration fails writes nothing: the Sync says
// HookFailed with the tail of the hook's log, read through the agent, and
// the first revision's pod goes on running. The fix lands the second
// revision's Deployment.
func TestHooksOnContainerd(t *testing.T) {
	u := newUpFixture(t)
	commit(t, u.repo, "deploy/shop.yaml", shopApp("1", "", "1"), "shop: migration 1, web 1")
	first := headOf(t, u.repo)
	up := u.start(t, u.repo, "--path", "deploy")

	sync := u.waitSync(t, up, first, metav1.ConditionTrue, keelsonv1alpha1.ReasonSucceeded)
	web := u.waitWeb(t, up, "1")
	u.checkOrder(t)
	u.checkHookLog(t, "migrating v1")
	for _, ref := range sync.Status.Inventory {
		if ref.Kind == "Job" {
			t.Errorf("the hook %s/%s is in the Sync's inventory", ref.Namespace, ref.Name)
		}
	}
	deploy, err := u.client(t).AppsV1().Deployments("shop").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A failing migration: the revision stops before its Deployment.
	commit(t, u.repo, "deploy/shop.yaml", shopApp("2", hookError, "2"), "shop: migration 2, web 2")
	second := headOf(t, u.repo)
	u.checkHookFailed(t, up, second, first, deploy.Generation, web)

	// The fix: the hook runs again, succeeds, and the Deployment follows.
	commit(t, u.repo, "deploy/shop.yaml", shopApp("2", "", "2"), "shop: migration 2 fixed")
	third := headOf(t, u.repo)
	u.waitSync(t, up, third, metav1.ConditionTrue, keelsonv1alpha1.ReasonSucceeded)
	after, err := u.client(t).AppsV1().Deployments("shop").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := envOf(after.Spec.Template.Spec.Containers[0], "VERSION"); v != "2" {
		t.Errorf("the Deployment after the fix: VERSION %q, want 2", v)
	}
	if now := u.waitWeb(t, up, "2"); now.UID == web.UID {
		t.Errorf("version 2 runs in the first revision's pod %s", web.Name)
	}
	u.checkHookLog(t, "migrating v2")
}

// checkHookFailed waits until the Sync says HookFailed at revision, with
// the hook's log line prefixed by its pod and container, and checks that
// nothing of the revision was written: applied stays the first revision's,
// the Deployment its generation, and web its pod.
func (u *upFixture) checkHookFailed(t *testing.T, p *proc, revision, applied string, generation int64, web corev1.Pod) {
	t.Helper()
	sync := u.waitSync(t, p, revision, metav1.ConditionFalse, keelsonv1alpha1.ReasonHookFailed)
	if msg := meta.FindStatusCondition(sync.Status.Conditions, keelsonv1alpha1.ConditionReady).Message; !strings.Contains(msg, "pre-apply hook jobs.batch shop/migrate") {
		t.Errorf("Ready's message does not name the hook: %q", msg)
	}
	pod := u.hookPod(t)
	if want := pod.Name + "/migrate: " + hookError; !slices.Contains(sync.Status.Errors, want) {
		t.Errorf("the Sync's errors lack the failed hook's log line %q:\n%s", want, strings.Join(sync.Status.Errors, "\n"))
	}
	if sync.Status.LastAppliedRevision != applied {
		t.Errorf("last applied revision %s after the hook failed, want %s", sync.Status.LastAppliedRevision, applied)
	}
	after, err := u.client(t).AppsV1().Deployments("shop").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := envOf(after.Spec.Template.Spec.Containers[0], "VERSION"); v != "1" || after.Generation != generation {
		t.Errorf("the Deployment after the hook failed: VERSION %q, generation %d; want the first revision's (1, generation %d)", v, after.Generation, generation)
	}
	if now := u.waitWeb(t, p, "1"); now.UID != web.UID {
		t.Errorf("the web pod after the hook failed is %s (%s), want the first revision's %s (%s)", now.Name, now.UID, web.Name, web.UID)
	}
}

// headOf is the commit the repository's HEAD names.
func headOf(t *testing.T, repo string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// syncObject reads the Sync of keelson up's repository through client-go.
func (u *upFixture) syncObject(t *testing.T) (*keelsonv1alpha1.Sync, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig(u.data))
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	obj, err := dyn.Resource(schema.GroupVersionResource{Group: "keelson.dev", Version: "v1alpha1", Resource: "syncs"}).Get(t.Context(), "default", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	s := &keelsonv1alpha1.Sync{}
	return s, runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, s)
}

// waitSync waits until the Sync has attempted revision and its Ready
// condition has status and reason.
func (u *upFixture) waitSync(t *testing.T, p *proc, revision string, status metav1.ConditionStatus, reason string) *keelsonv1alpha1.Sync {
	t.Helper()
	var s *keelsonv1alpha1.Sync
	eventuallyWithin(t, hooksWait, fmt.Sprintf("the Sync Ready=%s %s at %.7s", status, reason, revision), func() (string, bool) {
		select {
		case <-p.done:
			t.Fatalf("keelson up exited:\n%s", p.out)
		default:
		}
		var err error
		if s, err = u.syncObject(t); err != nil {
			return err.Error(), false
		}
		ready := meta.FindStatusCondition(s.Status.Conditions, keelsonv1alpha1.ConditionReady)
		if ready == nil {
			return fmt.Sprintf("no Ready condition: %+v", s.Status), false
		}
		out := fmt.Sprintf("attempted %.7s: Ready=%s %s %q\nerrors:\n%s",
			s.Status.LastAttemptedRevision, ready.Status, ready.Reason, ready.Message, strings.Join(s.Status.Errors, "\n"))
		return out, s.Status.LastAttemptedRevision == revision && ready.Status == status && ready.Reason == reason
	})
	return s
}

// waitWeb waits until shop has one web pod, Running and Ready, of version,
// and no other (an old one still stopping included).
func (u *upFixture) waitWeb(t *testing.T, p *proc, version string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	eventuallyWithin(t, hooksWait, "one web pod Ready at version "+version, func() (string, bool) {
		select {
		case <-p.done:
			t.Fatalf("keelson up exited:\n%s", p.out)
		default:
		}
		list, err := u.client(t).CoreV1().Pods("shop").List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err.Error(), false
		}
		var seen []string
		for _, p := range list.Items {
			seen = append(seen, fmt.Sprintf("%s %s ready=%v deleting=%v VERSION=%s",
				p.Name, p.Status.Phase, podReady(&p), p.DeletionTimestamp != nil, envOf(p.Spec.Containers[0], "VERSION")))
		}
		if len(list.Items) != 1 {
			return strings.Join(seen, "\n"), false
		}
		pod = list.Items[0]
		return seen[0], pod.Status.Phase == corev1.PodRunning && podReady(&pod) && pod.DeletionTimestamp == nil &&
			envOf(pod.Spec.Containers[0], "VERSION") == version
	})
	return pod
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// hookPod is the pod of the current shop/migrate Job.
func (u *upFixture) hookPod(t *testing.T) corev1.Pod {
	t.Helper()
	c := u.client(t)
	job, err := c.BatchV1().Jobs("shop").Get(t.Context(), "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.CoreV1().Pods("shop").List(t.Context(), metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=migrate"})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if slices.ContainsFunc(p.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == job.UID }) {
			pods = append(pods, p)
		}
	}
	if len(pods) != 1 {
		t.Fatalf("%d pods of the Job shop/migrate (%s), want 1", len(pods), job.UID)
	}
	return pods[0]
}

// checkHookLog checks that the migrate Job is Complete and its pod's log,
// through the API, is line.
func (u *upFixture) checkHookLog(t *testing.T, line string) {
	t.Helper()
	job, err := u.client(t).BatchV1().Jobs("shop").Get(t.Context(), "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !jobComplete(job) {
		t.Errorf("the hook shop/migrate is not Complete: %+v", job.Status)
	}
	pod := u.hookPod(t)
	b, err := u.client(t).CoreV1().Pods("shop").GetLogs(pod.Name, &corev1.PodLogOptions{Container: "migrate"}).DoRaw(t.Context())
	if err != nil || strings.TrimSpace(string(b)) != line {
		t.Errorf("log of the hook's pod %s: %q, %v; want %q", pod.Name, b, err, line)
	}
}

func jobComplete(j *batchv1.Job) bool {
	return slices.ContainsFunc(j.Status.Conditions, func(c batchv1.JobCondition) bool {
		return c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue
	})
}

// checkOrder checks the first revision's order in the store's revisions,
// read back through the API at exact resource versions: the namespace of
// wave -1 was created before the hook's Job, the Job completed after it was
// created, and the Deployment was created after that.
func (u *upFixture) checkOrder(t *testing.T) {
	t.Helper()
	c, ctx := u.client(t), t.Context()
	nss, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now, err := strconv.ParseInt(nss.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("list resource version %q: %v", nss.ResourceVersion, err)
	}
	job := func(ok func(*batchv1.Job) bool) func(metav1.ListOptions) (bool, error) {
		return func(o metav1.ListOptions) (bool, error) {
			l, err := c.BatchV1().Jobs("shop").List(ctx, o)
			return err == nil && slices.ContainsFunc(l.Items, func(j batchv1.Job) bool { return j.Name == "migrate" && ok(&j) }), err
		}
	}
	ns := firstRevision(t, now, "namespace shop exists", func(o metav1.ListOptions) (bool, error) {
		l, err := c.CoreV1().Namespaces().List(ctx, o)
		return err == nil && slices.ContainsFunc(l.Items, func(n corev1.Namespace) bool { return n.Name == "shop" }), err
	})
	created := firstRevision(t, now, "job shop/migrate exists", job(func(*batchv1.Job) bool { return true }))
	complete := firstRevision(t, now, "job shop/migrate is Complete", job(jobComplete))
	web := firstRevision(t, now, "deployment shop/web exists", func(o metav1.ListOptions) (bool, error) {
		l, err := c.AppsV1().Deployments("shop").List(ctx, o)
		return err == nil && slices.ContainsFunc(l.Items, func(d appsv1.Deployment) bool { return d.Name == "web" }), err
	})
	if !(ns < created && created < complete && complete < web) {
		t.Errorf("store revisions: namespace created %d, hook created %d, hook complete %d, deployment created %d: want strictly increasing",
			ns, created, complete, web)
	}
}

// firstRevision is the lowest store revision, at most now, at which holds
// is true of the API's lists at exactly that revision; once true, holds
// must stay true up to now.
func firstRevision(t *testing.T, now int64, what string, holds func(metav1.ListOptions) (bool, error)) int64 {
	t.Helper()
	var err error
	i := sort.Search(int(now), func(i int) bool {
		if err != nil {
			return true
		}
		var ok bool
		ok, err = holds(metav1.ListOptions{ResourceVersion: strconv.Itoa(i + 1), ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		return ok
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if i == int(now) {
		t.Fatalf("%s: not so at revision %d", what, now)
	}
	return int64(i + 1)
}
