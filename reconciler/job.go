package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

// Labels, annotations and the finalizer of Jobs' pods, as Kubernetes names
// them.
const (
	jobLabelControllerUID = "batch.kubernetes.io/controller-uid"
	jobLabelName          = "batch.kubernetes.io/job-name"
	jobLabelLegacyUID     = "controller-uid"
	jobLabelLegacyName    = "job-name"
	jobCompletionIndex    = "batch.kubernetes.io/job-completion-index"
	jobTrackingFinalizer  = "batch.kubernetes.io/job-tracking"
	jobIndexEnv           = "JOB_COMPLETION_INDEX"
)

var jobGVK = batchv1.SchemeGroupVersion.WithKind("Job")

// JobOptions tune the Job controller.
type JobOptions struct {
	// BackoffBase is the delay before a failed pod of a Job is replaced,
	// doubled at each failure in a row up to BackoffMax. Default 10s, as
	// Kubernetes.
	BackoffBase time.Duration
	// BackoffMax caps the delay. Default 6 minutes.
	BackoffMax time.Duration
}

func (o JobOptions) withDefaults() JobOptions {
	if o.BackoffBase <= 0 {
		o.BackoffBase = 10 * time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 6 * time.Minute
	}
	return o
}

// JobController runs Jobs: it creates pods from the template until the
// Job's completions have succeeded, at most parallelism at a time, replaces
// failed pods after a growing delay until the backoff limit, and writes the
// status and conditions kubectl and Argo CD read.
type JobController struct {
	*Controller
	st   *store.Store
	jobs cache.SharedIndexInformer
	pods cache.SharedIndexInformer
	exp  *expectations
	rec  *Recorder
	opts JobOptions
	now  func() time.Time

	// lastFailure is when the controller last saw a pod of each Job fail:
	// a pod's finishedAt has a resolution of a second, too coarse for the
	// backoff's first delays.
	mu          sync.Mutex
	lastFailure map[string]time.Time
	// released are the pods whose tracking finalizer this controller took
	// off and whose cache does not show it yet: a stale pod with its
	// finalizer must not be counted again.
	released map[types.UID]bool
	// gone are the pods of each Job deleted by someone else (a node's
	// eviction) before they were counted: Succeeded ones count as
	// succeeded, others as failed, as Kubernetes counts them.
	gone map[string]map[types.UID]bool
}

// NewJobController returns the Job controller, registered on the informers.
func NewJobController(st *store.Store, inf *Informers, rec *Recorder, opts JobOptions, qopts QueueOptions, log *slog.Logger) *JobController {
	c := &JobController{
		st: st, jobs: inf.For(store.MustResource("jobs.batch")), pods: inf.For(store.MustResource("pods")),
		exp: newExpectations(), rec: rec, opts: opts.withDefaults(), now: time.Now,
		lastFailure: map[string]time.Time{}, released: map[types.UID]bool{}, gone: map[string]map[types.UID]bool{},
	}
	c.Controller = NewController("job", c, qopts, log)
	c.jobs.AddEventHandler(c.Handler(SelfKeys))
	c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			p := obj.(*corev1.Pod)
			if ref := controllerOf(p, jobGVK); ref != nil {
				c.exp.creationObserved(p.Namespace + "/" + ref.Name)
				c.Enqueue(p.Namespace + "/" + ref.Name)
			}
		},
		UpdateFunc: func(_, cur any) {
			p := cur.(*corev1.Pod)
			if !slices.Contains(p.Finalizers, jobTrackingFinalizer) {
				c.mu.Lock()
				delete(c.released, p.UID)
				c.mu.Unlock()
			}
			if ref := controllerOf(p, jobGVK); ref != nil {
				c.Enqueue(p.Namespace + "/" + ref.Name)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			if ref := controllerOf(p, jobGVK); ref != nil {
				key := p.Namespace + "/" + ref.Name
				c.mu.Lock()
				ours := c.exp.deleting(key, p.UID)
				if !ours && !c.released[p.UID] && slices.Contains(p.Finalizers, jobTrackingFinalizer) {
					if c.gone[key] == nil {
						c.gone[key] = map[types.UID]bool{}
					}
					c.gone[key][p.UID] = p.Status.Phase == corev1.PodSucceeded
				}
				delete(c.released, p.UID)
				c.mu.Unlock()
				c.exp.deletionObserved(key, p.UID)
				c.Enqueue(key)
			}
		},
	})
	return c
}

// Reconcile brings one Job a step closer to its end and writes its status.
func (c *JobController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.jobs.GetIndexer().GetByKey(key)
	if !ok {
		c.exp.forget(key)
		c.mu.Lock()
		delete(c.lastFailure, key)
		delete(c.gone, key)
		c.mu.Unlock()
		return Result{}, c.releaseOrphans(ctx, key)
	}
	job := obj.(*batchv1.Job)
	pods := c.podsOf(job)
	s := &jobSync{c: c, job: job, key: key, status: *job.Status.DeepCopy(), now: c.now()}
	if err := s.track(ctx, pods); err != nil {
		return Result{}, err
	}
	wait, err := s.run(ctx, pods)
	if werr := s.writeStatus(ctx); werr != nil {
		return Result{}, werr
	}
	return Result{RequeueAfter: wait}, err
}

// podsOf returns the pods the Job controls.
func (c *JobController) podsOf(job *batchv1.Job) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexOwner, string(job.UID)) {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == job.UID {
			out = append(out, p)
		}
	}
	return out
}

// releaseOrphans takes the tracking finalizer off the pods of a Job that is
// gone, which no status will count any more.
func (c *JobController) releaseOrphans(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	var errs []error
	for _, p := range ByIndex[*corev1.Pod](c.pods, IndexNamespace, ns) {
		if ref := controllerOf(p, jobGVK); ref != nil && ref.Name == name && slices.Contains(p.Finalizers, jobTrackingFinalizer) {
			errs = append(errs, c.dropTracking(ctx, p))
		}
	}
	return errors.Join(errs...)
}

func (c *JobController) dropTracking(ctx context.Context, p *corev1.Pod) error {
	cp := p.DeepCopy()
	cp.Finalizers = slices.DeleteFunc(cp.Finalizers, func(f string) bool { return f == jobTrackingFinalizer })
	if err := c.st.Update(ctx, cp); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("pod %s/%s: remove finalizer %s: %w", p.Namespace, p.Name, jobTrackingFinalizer, err)
	}
	return nil
}

// jobSync is one reconcile of one Job.
type jobSync struct {
	c      *JobController
	job    *batchv1.Job
	key    string
	status batchv1.JobStatus
	now    time.Time
}

// finished reports whether the Job has its terminal condition.
func jobFinished(s batchv1.JobStatus) (batchv1.JobConditionType, bool) {
	for _, c := range s.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type, true
		}
	}
	return "", false
}

// track counts the pods that finished, in two steps that survive a crash
// between any two writes, as Kubernetes does: a finished pod still carrying
// the tracking finalizer is first written into status.uncountedTerminatedPods
// (with its index, for Indexed Jobs), then loses the finalizer, then moves
// from the uncounted list into the succeeded or failed count. A pod is
// never counted twice, and one deleted after the first write is not lost.
func (s *jobSync) track(ctx context.Context, pods []*corev1.Pod) error {
	if s.status.UncountedTerminatedPods == nil {
		s.status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	u := s.status.UncountedTerminatedPods
	s.c.mu.Lock()
	gone := maps.Clone(s.c.gone[s.key])
	released := maps.Clone(s.c.released)
	s.c.mu.Unlock()
	for uid, succeeded := range gone {
		switch {
		case slices.Contains(u.Succeeded, uid) || slices.Contains(u.Failed, uid):
		case succeeded:
			u.Succeeded = append(u.Succeeded, uid)
		default:
			u.Failed = append(u.Failed, uid)
		}
	}
	var release []*corev1.Pod
	for _, p := range pods {
		if !slices.Contains(p.Finalizers, jobTrackingFinalizer) || released[p.UID] {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			if !slices.Contains(u.Succeeded, p.UID) {
				u.Succeeded = append(u.Succeeded, p.UID)
				if i, ok := podIndex(p); ok && s.indexed() {
					s.status.CompletedIndexes = addIndex(s.status.CompletedIndexes, i)
				}
			}
			release = append(release, p)
		case p.Status.Phase == corev1.PodFailed:
			action := s.failureAction(p)
			if action != batchv1.PodFailurePolicyActionIgnore && !slices.Contains(u.Failed, p.UID) {
				u.Failed = append(u.Failed, p.UID)
				s.c.mu.Lock()
				s.c.lastFailure[s.key] = s.now
				s.c.mu.Unlock()
			}
			release = append(release, p)
		}
		// A pod being deleted before it finished (a lost node's eviction)
		// keeps the finalizer: it counts as failed when it is gone.
	}
	if len(release) == 0 && len(u.Succeeded) == 0 && len(u.Failed) == 0 {
		return nil
	}
	if err := s.writeStatus(ctx); err != nil {
		return err
	}
	s.c.mu.Lock()
	for uid := range gone { // in the status now
		delete(s.c.gone[s.key], uid)
	}
	s.c.mu.Unlock()
	var errs []error
	for _, p := range release {
		err := s.c.dropTracking(ctx, p)
		if err == nil {
			s.c.mu.Lock()
			s.c.released[p.UID] = true
			s.c.mu.Unlock()
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The finalizers are off: the uncounted pods are counted now.
	s.status.Succeeded += int32(len(u.Succeeded))
	s.status.Failed += int32(len(u.Failed))
	u.Succeeded, u.Failed = nil, nil
	return nil
}

func (s *jobSync) indexed() bool {
	return s.job.Spec.CompletionMode != nil && *s.job.Spec.CompletionMode == batchv1.IndexedCompletion
}

func (s *jobSync) parallelism() int {
	if s.job.Spec.Parallelism == nil {
		return 1
	}
	return int(*s.job.Spec.Parallelism)
}

// completions is spec.completions, and whether it is set.
func (s *jobSync) completions() (int, bool) {
	if s.job.Spec.Completions == nil {
		return 0, false
	}
	return int(*s.job.Spec.Completions), true
}

func (s *jobSync) backoffLimit() int {
	if s.job.Spec.BackoffLimit != nil {
		return int(*s.job.Spec.BackoffLimit)
	}
	if s.job.Spec.BackoffLimitPerIndex != nil {
		return int(^uint32(0) >> 1)
	}
	return 6
}

// run decides the Job's next step from its pods: fail it, complete it,
// suspend it, or create the pods it lacks. It returns when to look again.
func (s *jobSync) run(ctx context.Context, pods []*corev1.Pod) (time.Duration, error) {
	active, terminating, failedNow := s.classify(pods)
	s.status.Active = int32(len(active))
	s.status.Terminating = ptr.To(int32(len(terminating)))
	ready := int32(0)
	for _, p := range active {
		if podReady(p) {
			ready++
		}
	}
	s.status.Ready = &ready
	if _, done := jobFinished(s.status); done {
		if err := s.deletePods(ctx, active, "the Job has finished"); err != nil {
			return 0, err
		}
		return s.expire(ctx, pods)
	}
	if s.job.DeletionTimestamp != nil {
		return 0, nil // being deleted: its pods are the garbage collector's
	}
	if s.job.Spec.Suspend != nil && *s.job.Spec.Suspend {
		return 0, s.suspend(ctx, active)
	}
	s.resume()
	if s.status.StartTime == nil {
		t := metav1.NewTime(s.now)
		s.status.StartTime = &t
	}
	if s.condition(batchv1.JobFailureTarget) == nil && s.condition(batchv1.JobSuccessCriteriaMet) == nil {
		// Once decided, the outcome stays: a deadline passing while the
		// last pods of a succeeded Job are deleted does not fail it.
		if reason, msg, ok := s.failed(failedNow); ok {
			s.setCondition(batchv1.JobFailureTarget, reason, msg)
		} else if reason, msg, ok := s.succeeded(active); ok {
			s.setCondition(batchv1.JobSuccessCriteriaMet, reason, msg)
		}
	}
	if c := s.condition(batchv1.JobFailureTarget); c != nil {
		return s.finish(ctx, active, terminating, batchv1.JobFailed, c)
	}
	if c := s.condition(batchv1.JobSuccessCriteriaMet); c != nil {
		return s.finish(ctx, active, terminating, batchv1.JobComplete, c)
	}
	if !s.c.exp.satisfied(s.key) {
		return 0, nil // our last writes are not in the cache yet
	}
	wait, err := s.manage(ctx, active, pods)
	if d := s.deadline(); d > 0 && (wait == 0 || d < wait) {
		wait = d
	}
	return wait, err
}

// classify sorts the Job's pods: active ones, those being deleted before
// they finished, and the failed ones of this Job's life (for the pod
// failure policy's FailJob and the backoff).
func (s *jobSync) classify(pods []*corev1.Pod) (active, terminating, failed []*corev1.Pod) {
	for _, p := range pods {
		switch {
		case p.Status.Phase == corev1.PodFailed:
			failed = append(failed, p)
		case p.Status.Phase == corev1.PodSucceeded:
		case p.DeletionTimestamp != nil || s.c.exp.deleting(s.key, p.UID):
			terminating = append(terminating, p)
		default:
			active = append(active, p)
		}
	}
	return active, terminating, failed
}

// failed says whether the Job must fail, and why, in the order Kubernetes
// checks: a pod failure policy rule with action FailJob, the backoff
// limit, the per-index limits, the active deadline.
func (s *jobSync) failed(failedPods []*corev1.Pod) (reason, msg string, ok bool) {
	for _, p := range failedPods {
		if s.failureAction(p) == batchv1.PodFailurePolicyActionFailJob {
			return batchv1.JobReasonPodFailurePolicy, fmt.Sprintf("Pod %s/%s %s", p.Namespace, p.Name, s.failureRuleMessage(p)), true
		}
	}
	if int(s.status.Failed) > s.backoffLimit() {
		return batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit", true
	}
	if s.indexed() && s.job.Spec.BackoffLimitPerIndex != nil {
		failedIdx := s.failedIndexes(failedPods)
		s.status.FailedIndexes = ptr.To(formatIndexes(failedIdx))
		if max := s.job.Spec.MaxFailedIndexes; max != nil && len(failedIdx) > int(*max) {
			return batchv1.JobReasonMaxFailedIndexesExceeded, "Job has exceeded the specified maximal number of failed indexes", true
		}
		n, _ := s.completions()
		if len(failedIdx) > 0 && len(failedIdx)+len(parseIndexes(s.status.CompletedIndexes)) >= n {
			return batchv1.JobReasonFailedIndexes, "Job has failed indexes", true
		}
	}
	if s.job.Spec.ActiveDeadlineSeconds != nil && s.status.StartTime != nil &&
		!s.now.Before(s.status.StartTime.Add(time.Duration(*s.job.Spec.ActiveDeadlineSeconds)*time.Second)) {
		return batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline", true
	}
	return "", "", false
}

// deadline is how long until the active deadline, 0 when none.
func (s *jobSync) deadline() time.Duration {
	if s.job.Spec.ActiveDeadlineSeconds == nil || s.status.StartTime == nil {
		return 0
	}
	return max(time.Millisecond, s.status.StartTime.Add(time.Duration(*s.job.Spec.ActiveDeadlineSeconds)*time.Second).Sub(s.now))
}

// succeeded says whether the Job has met its success criteria: a success
// policy's rule, its completions, or (without completions) one pod
// succeeded and none left running.
func (s *jobSync) succeeded(active []*corev1.Pod) (reason, msg string, ok bool) {
	n, hasCompletions := s.completions()
	if s.indexed() {
		done := parseIndexes(s.status.CompletedIndexes)
		if s.successPolicyMet(done) {
			return batchv1.JobReasonSuccessPolicy, "Matched rules at index 0", true
		}
		if len(done) >= n {
			return batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods", true
		}
		return "", "", false
	}
	if hasCompletions && int(s.status.Succeeded) >= n {
		return batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods", true
	}
	if !hasCompletions && s.status.Succeeded > 0 && len(active) == 0 {
		return batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods", true
	}
	return "", "", false
}

// successPolicyMet reports whether one rule of the success policy holds
// for the completed indexes.
func (s *jobSync) successPolicyMet(done []int) bool {
	if s.job.Spec.SuccessPolicy == nil {
		return false
	}
	for _, r := range s.job.Spec.SuccessPolicy.Rules {
		want := done
		if r.SucceededIndexes != nil {
			in := parseIndexes(*r.SucceededIndexes)
			want = nil
			for _, i := range done {
				if slices.Contains(in, i) {
					want = append(want, i)
				}
			}
			if r.SucceededCount == nil && len(want) < len(in) {
				continue
			}
		}
		if r.SucceededCount != nil && len(want) < int(*r.SucceededCount) {
			continue
		}
		if r.SucceededIndexes == nil && r.SucceededCount == nil {
			continue
		}
		return true
	}
	return false
}

// finish deletes what still runs of a Job that met its end, and adds the
// terminal condition once no pod of it is left running or terminating.
func (s *jobSync) finish(ctx context.Context, active, terminating []*corev1.Pod, terminal batchv1.JobConditionType, interim *batchv1.JobCondition) (time.Duration, error) {
	if len(active) > 0 {
		return 0, s.deletePods(ctx, active, interim.Message)
	}
	if len(terminating) > 0 {
		return 0, nil // their deletion events bring the Job back
	}
	s.setCondition(terminal, interim.Reason, interim.Message)
	if terminal == batchv1.JobComplete {
		t := metav1.NewTime(s.now)
		s.status.CompletionTime = &t
		s.c.rec.Eventf(s.job, corev1.EventTypeNormal, "Completed", "Job completed")
	} else {
		s.c.rec.Eventf(s.job, corev1.EventTypeWarning, interim.Reason, "%s", interim.Message)
	}
	return 0, nil
}

// expire carries out ttlSecondsAfterFinished. Kubernetes deletes the Job;
// a Job from Git would then be created again by the next sync and run
// again, so keelson deletes its pods (their containers and logs) and keeps
// the Job, finished, with its status; it leaves with Git. It returns when
// to look again.
func (s *jobSync) expire(ctx context.Context, pods []*corev1.Pod) (time.Duration, error) {
	ttl := s.job.Spec.TTLSecondsAfterFinished
	if ttl == nil || len(pods) == 0 {
		return 0, nil
	}
	var at time.Time
	for _, c := range s.status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			at = c.LastTransitionTime.Add(time.Duration(*ttl) * time.Second)
		}
	}
	if wait := at.Sub(s.now); wait > 0 {
		return wait, nil
	}
	return 0, s.deletePods(ctx, pods, fmt.Sprintf("ttlSecondsAfterFinished (%ds) passed; the Job stays while it is in Git", *ttl))
}

// suspend deletes a suspended Job's running pods and says so.
func (s *jobSync) suspend(ctx context.Context, active []*corev1.Pod) error {
	if c := s.condition(batchv1.JobSuspended); c == nil || c.Status != corev1.ConditionTrue {
		s.setCondition(batchv1.JobSuspended, "JobSuspended", "Job suspended")
		s.c.rec.Eventf(s.job, corev1.EventTypeNormal, "Suspended", "Job suspended")
	}
	s.status.StartTime = nil // the active deadline counts from the resumption
	return s.deletePods(ctx, active, "the Job is suspended")
}

// resume marks a Job no longer suspended.
func (s *jobSync) resume() {
	if c := s.condition(batchv1.JobSuspended); c != nil && c.Status == corev1.ConditionTrue {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, "JobResumed", "Job resumed"
		c.LastTransitionTime, c.LastProbeTime = metav1.NewTime(s.now), metav1.NewTime(s.now)
		s.c.rec.Eventf(s.job, corev1.EventTypeNormal, "Resumed", "Job resumed")
	}
}

// manage creates the pods the Job lacks, after the backoff delay of its
// last failures, and deletes what is over its parallelism.
func (s *jobSync) manage(ctx context.Context, active, pods []*corev1.Pod) (time.Duration, error) {
	want := s.parallelism()
	var indexes []int
	if s.indexed() {
		// One pod an index, as Kubernetes keeps: a second one (a create
		// whose answer was lost and was made again) or one of an index
		// out of range goes.
		if extra := s.duplicateIndexes(active); len(extra) > 0 {
			return 0, s.deletePods(ctx, extra, "a second pod of an index, or an index out of range")
		}
		indexes = s.missingIndexes(active, pods)
		want = min(want, len(active)+len(indexes))
	} else {
		n, has := s.completions()
		switch {
		case has:
			want = min(want, n-int(s.status.Succeeded))
		case s.status.Succeeded > 0:
			return 0, nil // a pod succeeded: the work queue is drained, the rest finish
		}
	}
	if len(active) > want {
		extra := slices.Clone(active)
		deletionOrder(extra)
		return 0, s.deletePods(ctx, extra[:len(active)-want], "more pods than parallelism")
	}
	need := want - len(active)
	if need <= 0 {
		return 0, nil
	}
	if wait := s.backoff(pods); wait > 0 {
		return wait, nil
	}
	if s.indexed() {
		indexes = indexes[:need]
	}
	return 0, s.createPods(ctx, need, indexes)
}

// backoff is how long the Job still waits before replacing failed pods:
// the base delay doubled for each failure since the last success, from the
// last failure (as this controller saw it, or the pod's finishedAt after a
// restart), as Kubernetes' job controller does.
func (s *jobSync) backoff(pods []*corev1.Pod) time.Duration {
	var lastSuccess, lastFailure time.Time
	for _, p := range pods {
		at := podFinishedAt(p)
		if p.Status.Phase == corev1.PodSucceeded && at.After(lastSuccess) {
			lastSuccess = at
		}
	}
	failures := 0
	for _, p := range pods {
		at := podFinishedAt(p)
		if p.Status.Phase == corev1.PodFailed && s.failureAction(p) != batchv1.PodFailurePolicyActionIgnore && at.After(lastSuccess) {
			failures++
			if at.After(lastFailure) {
				lastFailure = at
			}
		}
	}
	if failures == 0 {
		return 0
	}
	s.c.mu.Lock()
	if seen := s.c.lastFailure[s.key]; seen.After(lastFailure) {
		lastFailure = seen
	}
	s.c.mu.Unlock()
	delay := s.c.opts.BackoffBase
	for range failures - 1 {
		if delay *= 2; delay >= s.c.opts.BackoffMax {
			delay = s.c.opts.BackoffMax
			break
		}
	}
	if left := lastFailure.Add(delay).Sub(s.now); left > 0 {
		return left
	}
	return 0
}

// podFinishedAt is when a finished pod's last container ended (its last
// condition's time when no container says).
func podFinishedAt(p *corev1.Pod) time.Time {
	var at time.Time
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.FinishedAt.After(at) {
			at = t.FinishedAt.Time
		}
	}
	if at.IsZero() {
		for _, c := range p.Status.Conditions {
			if c.LastTransitionTime.After(at) {
				at = c.LastTransitionTime.Time
			}
		}
	}
	if at.IsZero() {
		at = p.CreationTimestamp.Time
	}
	return at
}

// duplicateIndexes are the active pods of an Indexed Job beyond one per
// index (the ready one kept, else the oldest), and those of no valid index.
func (s *jobSync) duplicateIndexes(active []*corev1.Pod) []*corev1.Pod {
	n, _ := s.completions()
	byIndex := map[int][]*corev1.Pod{}
	var extra []*corev1.Pod
	for _, p := range active {
		i, ok := podIndex(p)
		if !ok || i >= n {
			extra = append(extra, p)
			continue
		}
		byIndex[i] = append(byIndex[i], p)
	}
	for _, ps := range byIndex {
		if len(ps) < 2 {
			continue
		}
		slices.SortStableFunc(ps, func(a, b *corev1.Pod) int {
			if ra, rb := podReady(a), podReady(b); ra != rb {
				if ra {
					return -1
				}
				return 1
			}
			return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
		})
		extra = append(extra, ps[1:]...)
	}
	return extra
}

// missingIndexes are the indexes of an Indexed Job that are neither
// completed nor running nor failed for good, lowest first.
func (s *jobSync) missingIndexes(active, pods []*corev1.Pod) []int {
	n, _ := s.completions()
	taken := map[int]bool{}
	for _, i := range parseIndexes(s.status.CompletedIndexes) {
		taken[i] = true
	}
	if s.status.FailedIndexes != nil {
		for _, i := range parseIndexes(*s.status.FailedIndexes) {
			taken[i] = true
		}
	}
	for _, p := range active {
		if i, ok := podIndex(p); ok {
			taken[i] = true
		}
	}
	var out []int
	for i := range n {
		if !taken[i] {
			out = append(out, i)
		}
	}
	return out
}

// failedIndexes are the indexes whose failures passed backoffLimitPerIndex,
// or that a FailIndex rule failed.
func (s *jobSync) failedIndexes(failedPods []*corev1.Pod) []int {
	count := map[int]int{}
	out := map[int]bool{}
	for _, p := range failedPods {
		i, ok := podIndex(p)
		if !ok {
			continue
		}
		switch s.failureAction(p) {
		case batchv1.PodFailurePolicyActionIgnore:
			continue
		case batchv1.PodFailurePolicyActionFailIndex:
			out[i] = true
		}
		if count[i]++; count[i] > int(*s.job.Spec.BackoffLimitPerIndex) {
			out[i] = true
		}
	}
	var idx []int
	for i := range out {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	return idx
}

// createPods creates n pods (of the given indexes for an Indexed Job).
func (s *jobSync) createPods(ctx context.Context, n int, indexes []int) error {
	pods := make([]*corev1.Pod, n)
	for i := range n {
		idx := -1
		if indexes != nil {
			idx = indexes[i]
		}
		pods[i] = s.newPod(idx)
	}
	return s.c.writer().create(ctx, s.key, s.job, pods)
}

// newPod builds a pod of the Job from its template: the Job's labels and
// finalizer, and for an Indexed Job its index (annotation, label, hostname
// and the JOB_COMPLETION_INDEX variable), named as Kubernetes names them.
func (s *jobSync) newPod(index int) *corev1.Pod {
	j := s.job
	t := j.Spec.Template.DeepCopy()
	lbls := labels.Merge(t.Labels, jobLabels(j))
	prefix := j.Name + "-"
	ann := t.Annotations
	if index >= 0 {
		prefix = fmt.Sprintf("%s-%d-", j.Name, index)
		ann = labels.Merge(ann, map[string]string{jobCompletionIndex: strconv.Itoa(index)})
		lbls[jobCompletionIndex] = strconv.Itoa(index)
		if t.Spec.Hostname == "" {
			t.Spec.Hostname = truncate(fmt.Sprintf("%s-%d", j.Name, index), 63)
		}
		env := corev1.EnvVar{Name: jobIndexEnv, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.annotations['%s']", jobCompletionIndex)},
		}}
		for i := range t.Spec.InitContainers {
			t.Spec.InitContainers[i].Env = append(t.Spec.InitContainers[i].Env, env)
		}
		for i := range t.Spec.Containers {
			t.Spec.Containers[i].Env = append(t.Spec.Containers[i].Env, env)
		}
	}
	if len(prefix) > 58 {
		prefix = prefix[:58]
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: j.Namespace, Name: prefix + randSuffix(), GenerateName: prefix,
			Labels: lbls, Annotations: ann, Finalizers: append(t.Finalizers, jobTrackingFinalizer),
			OwnerReferences: []metav1.OwnerReference{ownerRef(j, jobGVK)},
		},
		Spec: t.Spec,
	}
}

// jobLabels are the labels every pod of the Job carries, by which its
// selector (written or implied) finds them.
func jobLabels(j *batchv1.Job) map[string]string {
	return map[string]string{
		jobLabelControllerUID: string(j.UID), jobLabelLegacyUID: string(j.UID),
		jobLabelName: j.Name, jobLabelLegacyName: j.Name,
	}
}

// deletePods deletes the Job's pods, saying why.
func (s *jobSync) deletePods(ctx context.Context, pods []*corev1.Pod, why string) error {
	return s.c.writer().delete(ctx, s.key, s.job, pods, why)
}

func (c *JobController) writer() podWriter { return podWriter{c.st, c.exp, c.rec} }

// failureAction is what the pod failure policy says of a failed pod: the
// action of its first matching rule, Count when none matches or there is
// no policy.
func (s *jobSync) failureAction(p *corev1.Pod) batchv1.PodFailurePolicyAction {
	if r := s.failureRule(p); r != nil {
		return r.Action
	}
	return batchv1.PodFailurePolicyActionCount
}

func (s *jobSync) failureRuleMessage(p *corev1.Pod) string {
	r := s.failureRule(p)
	if r == nil || r.OnExitCodes == nil {
		return "has condition matching FailJob rule"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && exitCodeMatches(r.OnExitCodes, cs.Name, t.ExitCode) {
			return fmt.Sprintf("failed with exit code %d matching FailJob rule", t.ExitCode)
		}
	}
	return "failed, matching FailJob rule"
}

func (s *jobSync) failureRule(p *corev1.Pod) *batchv1.PodFailurePolicyRule {
	pol := s.job.Spec.PodFailurePolicy
	if pol == nil || p.Status.Phase != corev1.PodFailed {
		return nil
	}
	for i := range pol.Rules {
		r := &pol.Rules[i]
		if r.OnExitCodes != nil {
			for _, cs := range p.Status.ContainerStatuses {
				if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && exitCodeMatches(r.OnExitCodes, cs.Name, t.ExitCode) {
					return r
				}
			}
		}
		for _, pc := range r.OnPodConditions {
			for _, c := range p.Status.Conditions {
				if c.Type == pc.Type && c.Status == pc.Status {
					return r
				}
			}
		}
	}
	return nil
}

func exitCodeMatches(r *batchv1.PodFailurePolicyOnExitCodesRequirement, container string, code int32) bool {
	if r.ContainerName != nil && *r.ContainerName != container {
		return false
	}
	in := slices.Contains(r.Values, code)
	if r.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn {
		return !in
	}
	return in
}

func (s *jobSync) condition(t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range s.status.Conditions {
		if s.status.Conditions[i].Type == t {
			return &s.status.Conditions[i]
		}
	}
	return nil
}

// setCondition sets condition t True with reason and message.
func (s *jobSync) setCondition(t batchv1.JobConditionType, reason, msg string) {
	now := metav1.NewTime(s.now)
	if c := s.condition(t); c != nil {
		if c.Status == corev1.ConditionTrue {
			return // as it was: rewriting its times would write the status at every reconcile
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime, c.LastTransitionTime = corev1.ConditionTrue, reason, msg, now, now
		return
	}
	s.status.Conditions = append(s.status.Conditions, batchv1.JobCondition{
		Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastProbeTime: now, LastTransitionTime: now,
	})
}

// writeStatus stores the status when it changed.
func (s *jobSync) writeStatus(ctx context.Context) error {
	st := s.status
	if u := st.UncountedTerminatedPods; u != nil && len(u.Succeeded) == 0 && len(u.Failed) == 0 {
		st.UncountedTerminatedPods = nil
		if s.job.Status.UncountedTerminatedPods != nil {
			st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
		}
	}
	if equality.Semantic.DeepEqual(st, s.job.Status) {
		return nil
	}
	// Compare-and-swap on the version this reconcile read: from a cache
	// behind the store, it would put back counts that moved on.
	out := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: s.job.Namespace, Name: s.job.Name, ResourceVersion: s.job.ResourceVersion}, Status: st}
	if err := s.c.st.UpdateStatus(ctx, out); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("job %s: write status: %w", s.key, err)
	}
	s.job = s.job.DeepCopy()
	s.job.Status = *st.DeepCopy()
	s.job.ResourceVersion = out.ResourceVersion
	return nil
}

// podIndex is a pod's completion index, from its annotation.
func podIndex(p *corev1.Pod) (int, bool) {
	v, ok := p.Annotations[jobCompletionIndex]
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	return i, err == nil && i >= 0
}
