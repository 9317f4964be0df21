package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// jobEnv runs the controllers and a fake node whose pods exit as exit
// says (nil: they run until the test finishes them).
func jobEnv(t *testing.T, exit func(*corev1.Pod) (int32, bool)) *testEnv {
	return jobEnvWith(t, exit, JobOptions{BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
}

func jobEnvWith(t *testing.T, exit func(*corev1.Pod) (int32, bool), jopts JobOptions) *testEnv {
	st := etcdtest.NewStore(t)
	startFakeNode(t, st, fakenode.Options{Exit: exit})
	opts := testOptions()
	opts.Job = jopts
	startControllers(t, st, opts)
	return &testEnv{t: t, st: st}
}

func newJob(name string, mutate func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "work", Image: "busybox"}}},
		}},
	}
	if mutate != nil {
		mutate(j)
	}
	return j
}

func (e *testEnv) job(name string) *batchv1.Job {
	return getDefault(e, name, &batchv1.Job{})
}

func (e *testEnv) jobPods(j *batchv1.Job) []*corev1.Pod {
	pods := ownedBy(listPods(e.t, e.st, "default", labels.Everything()), string(j.UID))
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return pods
}

// finishPod ends a pod as the node agent reports a container that exited
// with code.
func (e *testEnv) finishPod(p *corev1.Pod, code int32) {
	e.t.Helper()
	for range 20 {
		cur := &corev1.Pod{}
		if err := e.st.Get(e.t.Context(), p.Namespace, p.Name, cur); err != nil {
			e.t.Fatal(err)
		}
		now := metav1.Now()
		cur.Status.Phase = corev1.PodSucceeded
		if code != 0 {
			cur.Status.Phase = corev1.PodFailed
		}
		cur.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "work", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: now}}}}
		if err := e.st.UpdateStatus(e.t.Context(), cur); err == nil {
			return
		}
	}
	e.t.Fatalf("finish pod %s: too many conflicts", p.Name)
}

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == t && j.Status.Conditions[i].Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func jobString(j *batchv1.Job) string {
	var conds []string
	for _, c := range j.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
	}
	return fmt.Sprintf("active=%d succeeded=%d failed=%d completed=%q failedIndexes=%v conditions=%v",
		j.Status.Active, j.Status.Succeeded, j.Status.Failed, j.Status.CompletedIndexes, ptr.Deref(j.Status.FailedIndexes, ""), conds)
}

// waitJob waits until cond holds of the Job and its pods.
func (e *testEnv) waitJob(name, what string, cond func(*batchv1.Job, []*corev1.Pod) bool) (*batchv1.Job, []*corev1.Pod) {
	e.t.Helper()
	var j *batchv1.Job
	var pods []*corev1.Pod
	eventually(e.t, "job "+name+": "+what, func() (bool, string) {
		j = e.job(name)
		pods = e.jobPods(j)
		return cond(j, pods), jobString(j) + " " + describePods(pods)
	})
	return j, pods
}

func running(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// A Job of 5 completions, 2 in parallel: never more than two pods run,
// each finished pod is counted once, and the Job completes with 5 pods.
func TestJobParallelCompletions(t *testing.T) {
	env := jobEnv(t, nil)
	if err := env.st.Create(t.Context(), newJob("batch", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](5), ptr.To[int32](2)
	})); err != nil {
		t.Fatal(err)
	}
	for done := 0; done < 5; {
		_, pods := env.waitJob("batch", "pods running", func(j *batchv1.Job, pods []*corev1.Pod) bool {
			return len(running(pods)) == min(2, 5-done) && int(j.Status.Succeeded) == done
		})
		if n := len(pods) - done; n > 2 {
			t.Fatalf("%d pods not finished, parallelism 2: %s", n, describePods(pods))
		}
		for _, p := range running(pods) {
			env.finishPod(p, 0)
			done++
		}
	}
	j, pods := env.waitJob("batch", "complete", func(j *batchv1.Job, _ []*corev1.Pod) bool {
		return jobCondition(j, batchv1.JobComplete) != nil
	})
	if j.Status.Succeeded != 5 || j.Status.Failed != 0 || len(pods) != 5 || j.Status.CompletionTime == nil || j.Status.StartTime == nil {
		t.Errorf("%s, %d pods", jobString(j), len(pods))
	}
	if c := jobCondition(j, batchv1.JobSuccessCriteriaMet); c == nil || c.Reason != batchv1.JobReasonCompletionsReached {
		t.Errorf("SuccessCriteriaMet: %+v", c)
	}
	for _, p := range pods {
		if slices.Contains(p.Finalizers, jobTrackingFinalizer) {
			t.Errorf("pod %s still has the tracking finalizer after it was counted", p.Name)
		}
		if p.Labels[jobLabelControllerUID] != string(j.UID) || p.Labels[jobLabelName] != "batch" || p.Labels["app"] != "batch" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
	}
	if h := HealthOf(j); h.Status != Healthy {
		t.Errorf("health %v", h)
	}
}

// An Indexed Job: each pod carries its index (name, annotation, label,
// hostname, JOB_COMPLETION_INDEX); a failed index is retried after the
// backoff; the completed indexes are written as Kubernetes writes them.
func TestJobIndexed(t *testing.T) {
	env := jobEnv(t, nil)
	if err := env.st.Create(t.Context(), newJob("idx", func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
	})); err != nil {
		t.Fatal(err)
	}
	_, pods := env.waitJob("idx", "3 pods", func(_ *batchv1.Job, pods []*corev1.Pod) bool { return len(running(pods)) == 3 })
	seen := map[string]*corev1.Pod{}
	for _, p := range pods {
		idx := p.Annotations[jobCompletionIndex]
		seen[idx] = p
		if p.Labels[jobCompletionIndex] != idx || p.Spec.Hostname != "idx-"+idx || !strings.HasPrefix(p.Name, "idx-"+idx+"-") {
			t.Errorf("pod %s of index %s: label %q hostname %q", p.Name, idx, p.Labels[jobCompletionIndex], p.Spec.Hostname)
		}
		env := p.Spec.Containers[0].Env
		if len(env) != 1 || env[0].Name != jobIndexEnv || env[0].ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
			t.Errorf("pod %s env %+v", p.Name, env)
		}
	}
	if len(seen) != 3 || seen["0"] == nil || seen["2"] == nil {
		t.Fatalf("indexes %v", seen)
	}
	env.finishPod(seen["1"], 3)
	env.finishPod(seen["0"], 0)
	env.finishPod(seen["2"], 0)
	_, pods = env.waitJob("idx", "index 1 again", func(j *batchv1.Job, pods []*corev1.Pod) bool {
		r := running(pods)
		return len(r) == 1 && r[0].Annotations[jobCompletionIndex] == "1" && j.Status.CompletedIndexes == "0,2" && j.Status.Failed == 1
	})
	env.finishPod(running(pods)[0], 0)
	j, _ := env.waitJob("idx", "complete", func(j *batchv1.Job, _ []*corev1.Pod) bool { return jobCondition(j, batchv1.JobComplete) != nil })
	if j.Status.CompletedIndexes != "0-2" || j.Status.Failed != 1 {
		t.Errorf("%s", jobString(j))
	}
}

// Every pod fails: the Job makes backoffLimit+1 of them, each after the
// delay (the base, then twice it), then fails with BackoffLimitExceeded
// and makes no more.
func TestJobBackoffLimit(t *testing.T) {
	var mu sync.Mutex
	var seen []time.Time // when each pod ran, and at once exited
	names := map[string]bool{}
	const base = 300 * time.Millisecond
	env := jobEnvWith(t, func(p *corev1.Pod) (int32, bool) {
		mu.Lock()
		defer mu.Unlock()
		if !names[p.Name] {
			names[p.Name] = true
			seen = append(seen, time.Now())
		}
		return 1, true
	}, JobOptions{BackoffBase: base, BackoffMax: time.Minute})
	if err := env.st.Create(t.Context(), newJob("flaky", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To[int32](2) })); err != nil {
		t.Fatal(err)
	}
	j, pods := env.waitJob("flaky", "failed", func(j *batchv1.Job, _ []*corev1.Pod) bool { return jobCondition(j, batchv1.JobFailed) != nil })
	if c := jobCondition(j, batchv1.JobFailed); c.Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("Failed reason %q", c.Reason)
	}
	if jobCondition(j, batchv1.JobFailureTarget) == nil || j.Status.Failed != 3 || len(pods) != 3 || j.Status.Active != 0 {
		t.Errorf("%s, %d pods", jobString(j), len(pods))
	}
	if h := HealthOf(j); h.Status != Degraded || !strings.Contains(h.Message, "backoff limit") {
		t.Errorf("health %v", h)
	}
	mu.Lock()
	if len(seen) != 3 || seen[1].Sub(seen[0]) < base || seen[2].Sub(seen[1]) < 2*base {
		t.Errorf("pods ran at %v: want gaps of at least %s and %s", seen, base, 2*base)
	}
	mu.Unlock()
	time.Sleep(2 * base) // past the next backoff: still no new pod
	if pods := env.jobPods(j); len(pods) != 3 {
		t.Errorf("%d pods after the Job failed", len(pods))
	}
}

// The pod failure policy: exit code 7 is ignored (not counted, the pod is
// replaced even with backoffLimit 0), exit code 42 fails the Job at once.
func TestJobPodFailurePolicy(t *testing.T) {
	env := jobEnv(t, nil)
	if err := env.st.Create(t.Context(), newJob("policy", func(j *batchv1.Job) {
		j.Spec.BackoffLimit = ptr.To[int32](0)
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
			{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{7}}},
			{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		}}
	})); err != nil {
		t.Fatal(err)
	}
	_, pods := env.waitJob("policy", "a pod", func(_ *batchv1.Job, pods []*corev1.Pod) bool { return len(running(pods)) == 1 })
	env.finishPod(pods[0], 7)
	_, pods = env.waitJob("policy", "a replacement", func(j *batchv1.Job, pods []*corev1.Pod) bool {
		return len(pods) == 2 && len(running(pods)) == 1 && j.Status.Failed == 0
	})
	env.finishPod(running(pods)[0], 42)
	j, _ := env.waitJob("policy", "failed", func(j *batchv1.Job, _ []*corev1.Pod) bool { return jobCondition(j, batchv1.JobFailed) != nil })
	if c := jobCondition(j, batchv1.JobFailed); c.Reason != batchv1.JobReasonPodFailurePolicy || !strings.Contains(c.Message, "exit code 42") {
		t.Errorf("Failed: %+v", c)
	}
}

// A Job past its activeDeadlineSeconds fails with DeadlineExceeded and its
// running pods are deleted.
func TestJobActiveDeadline(t *testing.T) {
	env := jobEnv(t, nil)
	if err := env.st.Create(t.Context(), newJob("slow", func(j *batchv1.Job) {
		j.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
		j.Spec.Parallelism = ptr.To[int32](2)
	})); err != nil {
		t.Fatal(err)
	}
	j, pods := env.waitJob("slow", "failed", func(j *batchv1.Job, _ []*corev1.Pod) bool { return jobCondition(j, batchv1.JobFailed) != nil })
	if c := jobCondition(j, batchv1.JobFailed); c.Reason != batchv1.JobReasonDeadlineExceeded {
		t.Errorf("Failed: %+v", c)
	}
	if len(pods) != 0 || j.Status.Active != 0 {
		t.Errorf("%d pods left, %s", len(pods), jobString(j))
	}
}

// A suspended Job has no pods and is Suspended; resumed, it runs.
func TestJobSuspend(t *testing.T) {
	env := jobEnv(t, nil)
	job := newJob("later", func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(true) })
	if err := env.st.Create(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	j, _ := env.waitJob("later", "suspended", func(j *batchv1.Job, pods []*corev1.Pod) bool {
		return jobCondition(j, batchv1.JobSuspended) != nil && len(pods) == 0
	})
	if h := HealthOf(j); h.Status != Suspended {
		t.Errorf("health %v", h)
	}
	job.Spec.Suspend = ptr.To(false)
	if err := env.update(job); err != nil {
		t.Fatal(err)
	}
	_, pods := env.waitJob("later", "running", func(j *batchv1.Job, pods []*corev1.Pod) bool {
		return len(running(pods)) == 1 && jobCondition(j, batchv1.JobSuspended) == nil
	})
	env.finishPod(pods[0], 0)
	env.waitJob("later", "complete", func(j *batchv1.Job, _ []*corev1.Pod) bool { return jobCondition(j, batchv1.JobComplete) != nil })
}

// A success policy met by index 0 completes the Job and deletes the pods
// of the other indexes.
func TestJobSuccessPolicy(t *testing.T) {
	env := jobEnv(t, nil)
	if err := env.st.Create(t.Context(), newJob("leader", func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](4), ptr.To[int32](4)
		j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0")}}}
	})); err != nil {
		t.Fatal(err)
	}
	_, pods := env.waitJob("leader", "4 pods", func(_ *batchv1.Job, pods []*corev1.Pod) bool { return len(running(pods)) == 4 })
	for _, p := range pods {
		if p.Annotations[jobCompletionIndex] == "0" {
			env.finishPod(p, 0)
		}
	}
	j, pods := env.waitJob("leader", "complete", func(j *batchv1.Job, _ []*corev1.Pod) bool { return jobCondition(j, batchv1.JobComplete) != nil })
	if c := jobCondition(j, batchv1.JobSuccessCriteriaMet); c == nil || c.Reason != batchv1.JobReasonSuccessPolicy {
		t.Errorf("SuccessCriteriaMet %+v", c)
	}
	if len(pods) != 1 || j.Status.CompletedIndexes != "0" {
		t.Errorf("%d pods, %s", len(pods), jobString(j))
	}
}

// With backoffLimitPerIndex, an index that fails more than its limit is
// failed alone; the others complete; the Job then fails with
// FailedIndexes.
func TestJobBackoffLimitPerIndex(t *testing.T) {
	env := jobEnv(t, func(p *corev1.Pod) (int32, bool) {
		if p.Annotations[jobCompletionIndex] == "1" {
			return 1, true
		}
		return 0, true
	})
	if err := env.st.Create(t.Context(), newJob("per-index", func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
		j.Spec.BackoffLimitPerIndex = ptr.To[int32](1)
	})); err != nil {
		t.Fatal(err)
	}
	j, pods := env.waitJob("per-index", "failed", func(j *batchv1.Job, _ []*corev1.Pod) bool { return jobCondition(j, batchv1.JobFailed) != nil })
	if c := jobCondition(j, batchv1.JobFailed); c.Reason != batchv1.JobReasonFailedIndexes {
		t.Errorf("Failed: %+v", c)
	}
	if j.Status.CompletedIndexes != "0,2" || ptr.Deref(j.Status.FailedIndexes, "") != "1" || j.Status.Failed != 2 || len(pods) != 4 {
		t.Errorf("%s, %d pods", jobString(j), len(pods))
	}
}

// The two-step count: a pod listed as uncounted is counted once, even when
// its finalizer was already taken off and the pod is gone (a crash between
// the writes). On a store with no controller running, so that nothing else
// writes the Job's status meanwhile.
func TestJobTrackingCountsOnce(t *testing.T) {
	st := etcdtest.NewStore(t)
	job := newJob("once", func(j *batchv1.Job) { j.Spec.Completions = ptr.To[int32](3) })
	if err := st.Create(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	job.Status.Succeeded = 2
	job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{"gone-pod"}}
	if err := st.UpdateStatus(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	c := &JobController{st: st, exp: newExpectations(), rec: NewRecorder(st, "test", testLog()), opts: JobOptions{}.withDefaults(), now: time.Now,
		lastFailure: map[string]time.Time{}, released: map[types.UID]bool{}, gone: map[string]map[types.UID]bool{}}
	for range 2 { // the second pass finds nothing left to count
		stored := &batchv1.Job{}
		if err := st.Get(t.Context(), "default", "once", stored); err != nil {
			t.Fatal(err)
		}
		s := &jobSync{c: c, job: stored, key: "default/once", status: *stored.Status.DeepCopy(), now: time.Now()}
		if err := s.track(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		if err := s.writeStatus(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	stored := &batchv1.Job{}
	if err := st.Get(t.Context(), "default", "once", stored); err != nil {
		t.Fatal(err)
	}
	if u := stored.Status.UncountedTerminatedPods; stored.Status.Succeeded != 3 || (u != nil && len(u.Succeeded)+len(u.Failed) > 0) {
		t.Errorf("after the replay: succeeded %d, uncounted %+v", stored.Status.Succeeded, u)
	}
}

// ttlSecondsAfterFinished: once it passed, the finished Job's pods are
// deleted and the Job stays, Complete, so that a sync does not create it
// again and run it again. The TTL is a few seconds: a condition's time is
// kept to the second, so the pods may go up to a second early, and a TTL of
// one second left a loaded machine no time to see them before.
func TestJobTTLAfterFinished(t *testing.T) {
	env := jobEnv(t, func(*corev1.Pod) (int32, bool) { return 0, true })
	if err := env.st.Create(t.Context(), newJob("brief", func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](2), ptr.To[int32](2)
		j.Spec.TTLSecondsAfterFinished = ptr.To[int32](4)
	})); err != nil {
		t.Fatal(err)
	}
	env.waitJob("brief", "complete with its pods", func(j *batchv1.Job, pods []*corev1.Pod) bool {
		return jobCondition(j, batchv1.JobComplete) != nil && len(pods) == 2
	})
	j, _ := env.waitJob("brief", "its pods gone", func(j *batchv1.Job, pods []*corev1.Pod) bool { return len(pods) == 0 })
	if jobCondition(j, batchv1.JobComplete) == nil || j.Status.Succeeded != 2 {
		t.Errorf("after the TTL: %s", jobString(j))
	}
}

// A running pod deleted by something else than the Job controller (a lost
// node's eviction) counts as a failure, as in Kubernetes: with backoffLimit
// 0 the Job fails rather than making pods on a flapping node for ever.
func TestJobPodDeletedByOthersCountsAsFailed(t *testing.T) {
	env := jobEnv(t, nil)
	if err := env.st.Create(t.Context(), newJob("evicted", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To[int32](0) })); err != nil {
		t.Fatal(err)
	}
	_, pods := env.waitJob("evicted", "a pod", func(_ *batchv1.Job, pods []*corev1.Pod) bool { return len(running(pods)) == 1 })
	if err := env.st.Delete(t.Context(), store.MustResource("pods"), "default", pods[0].Name, nil); err != nil {
		t.Fatal(err)
	}
	j, _ := env.waitJob("evicted", "failed", func(j *batchv1.Job, _ []*corev1.Pod) bool { return jobCondition(j, batchv1.JobFailed) != nil })
	if j.Status.Failed != 1 || jobCondition(j, batchv1.JobFailed).Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("%s", jobString(j))
	}
}

// A running pod marked for deletion (a lost node's eviction) is replaced at
// once, and counts as failed when it is gone.
func TestJobPodMarkedForDeletion(t *testing.T) {
	env := jobEnv(t, nil)
	if err := env.st.Create(t.Context(), newJob("lost", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To[int32](1) })); err != nil {
		t.Fatal(err)
	}
	// The fake node's Node object: a marked pod bound to an existing node
	// is its agent's to remove (here, the test's), not the collector's.
	if err := env.st.Create(t.Context(), testNode("fake-node")); err != nil {
		t.Fatal(err)
	}
	_, pods := env.waitJob("lost", "a pod", func(_ *batchv1.Job, pods []*corev1.Pod) bool { return len(running(pods)) == 1 })
	if err := markDeleted(t.Context(), env.st, store.MustResource("pods"), pods[0], ""); err != nil {
		t.Fatal(err)
	}
	env.waitJob("lost", "a replacement beside the marked pod", func(j *batchv1.Job, ps []*corev1.Pod) bool {
		return len(ps) == 2 && len(running(ps)) == 1 && j.Status.Failed == 0
	})
	if err := env.st.Delete(t.Context(), store.MustResource("pods"), "default", pods[0].Name, nil); err != nil {
		t.Fatal(err)
	}
	j, _ := env.waitJob("lost", "the marked pod counted", func(j *batchv1.Job, _ []*corev1.Pod) bool { return j.Status.Failed == 1 })
	if jobCondition(j, batchv1.JobFailed) != nil {
		t.Errorf("one failure with backoffLimit 1 failed the Job: %s", jobString(j))
	}
}

// Two pods of one index (a create whose answer was lost, made again): the
// Job keeps one.
func TestJobIndexedDuplicate(t *testing.T) {
	env := jobEnv(t, nil)
	job := newJob("dup", func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](2), ptr.To[int32](2)
	})
	if err := env.st.Create(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	_, pods := env.waitJob("dup", "2 pods", func(_ *batchv1.Job, pods []*corev1.Pod) bool { return len(running(pods)) == 2 })
	twin := pods[0].DeepCopy()
	twin.Name, twin.UID, twin.ResourceVersion, twin.Status = twin.Name+"x", "", "", corev1.PodStatus{}
	twin.Spec.NodeName = ""
	if err := env.st.Create(t.Context(), twin); err != nil {
		t.Fatal(err)
	}
	env.waitJob("dup", "one pod an index again", func(_ *batchv1.Job, pods []*corev1.Pod) bool {
		seen := map[string]int{}
		for _, p := range pods {
			seen[p.Annotations[jobCompletionIndex]]++
		}
		return len(pods) == 2 && seen["0"] == 1 && seen["1"] == 1
	})
}
