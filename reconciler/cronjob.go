package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
	_ "time/tzdata" // a CronJob's timeZone on a machine without a zoneinfo database

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/keelson/keelson/store"
)

// Kubernetes' annotation on a CronJob's Jobs: the time it was scheduled
// for, in the CronJob's time zone.
const cronJobScheduledTimestamp = "batch.kubernetes.io/cronjob-scheduled-timestamp"

// tooManyMissed is how many missed start times make a CronJob warn, as
// Kubernetes does.
const tooManyMissed = 100

var cronJobGVK = batchv1.SchemeGroupVersion.WithKind("CronJob")

// CronJobOptions tune the CronJob controller.
type CronJobOptions struct {
	// Clock tells the time; the real one when nil. Tests set a fake one.
	Clock clock.PassiveClock
}

// CronJobController creates a CronJob's Jobs at the times of its schedule
// (in its timeZone), with its concurrency policy, starting deadline and
// history limits, and keeps its status: the active Jobs, the last schedule
// and the last success.
type CronJobController struct {
	*Controller
	st    *store.Store
	crons cache.SharedIndexInformer
	jobs  cache.SharedIndexInformer
	rec   *Recorder
	clock clock.PassiveClock
}

// NewCronJobController returns the CronJob controller, registered on the
// informers.
func NewCronJobController(st *store.Store, inf *Informers, rec *Recorder, opts CronJobOptions, qopts QueueOptions, log *slog.Logger) *CronJobController {
	c := &CronJobController{
		st: st, crons: inf.For(store.MustResource("cronjobs.batch")), jobs: inf.For(store.MustResource("jobs.batch")),
		rec: rec, clock: opts.Clock,
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	c.Controller = NewController("cronjob", c, qopts, log)
	c.crons.AddEventHandler(c.Handler(SelfKeys))
	enqueueOwner := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if j, ok := obj.(*batchv1.Job); ok {
			if ref := controllerOf(j, cronJobGVK); ref != nil {
				c.Enqueue(j.Namespace + "/" + ref.Name)
			}
		}
	}
	c.jobs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueOwner,
		UpdateFunc: func(_, cur any) { enqueueOwner(cur) },
		DeleteFunc: enqueueOwner,
	})
	return c
}

// Reconcile brings one CronJob's status up to date, starts the Job its
// schedule asks for now, if any, cleans up its history, and says when to
// look again (the next time of the schedule).
func (c *CronJobController) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, ok, _ := c.crons.GetIndexer().GetByKey(key)
	if !ok {
		return Result{}, nil
	}
	cj := obj.(*batchv1.CronJob)
	now := c.clock.Now()
	status := *cj.Status.DeepCopy()
	jobs := c.jobsOf(cj)
	if err := c.trackActive(ctx, cj, &status, jobs); err != nil {
		return Result{}, err
	}
	var next time.Duration
	var err error
	if cj.DeletionTimestamp == nil && (cj.Spec.Suspend == nil || !*cj.Spec.Suspend) {
		next, err = c.schedule(ctx, cj, &status, jobs, now)
	}
	cleanErr := c.cleanHistory(ctx, cj, jobs)
	if !equality.Semantic.DeepEqual(status, cj.Status) {
		// Compare-and-swap: from a cache behind the store, lastScheduleTime
		// would go back and a time run twice.
		out := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: cj.Namespace, Name: cj.Name, ResourceVersion: cj.ResourceVersion}, Status: status}
		if werr := c.st.UpdateStatus(ctx, out); werr != nil && !errors.Is(werr, store.ErrNotFound) {
			return Result{}, fmt.Errorf("cronjob %s: write status: %w", key, werr)
		}
	}
	return Result{RequeueAfter: next}, errors.Join(err, cleanErr)
}

func (c *CronJobController) jobsOf(cj *batchv1.CronJob) []*batchv1.Job {
	var out []*batchv1.Job
	for _, j := range ByIndex[*batchv1.Job](c.jobs, IndexOwner, string(cj.UID)) {
		if ref := metav1.GetControllerOfNoCopy(j); ref != nil && ref.UID == cj.UID {
			out = append(out, j)
		}
	}
	return out
}

// trackActive makes status.active the CronJob's Jobs still running, and
// notes the last success of those that finished. A Job the status names
// that the cache lacks is read from the store: one created an instant ago
// stays active until the cache shows it.
func (c *CronJobController) trackActive(ctx context.Context, cj *batchv1.CronJob, status *batchv1.CronJobStatus, jobs []*batchv1.Job) error {
	wasActive := map[string]bool{}
	for _, ref := range status.Active {
		wasActive[string(ref.UID)] = true
	}
	inCache := map[string]bool{}
	for _, j := range jobs {
		inCache[string(j.UID)] = true
	}
	for _, ref := range status.Active {
		if inCache[string(ref.UID)] {
			continue
		}
		j := &batchv1.Job{}
		switch err := c.st.Get(ctx, ref.Namespace, ref.Name, j); {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("cronjob %s/%s: read job %s: %w", cj.Namespace, cj.Name, ref.Name, err)
		case j.UID == ref.UID:
			jobs = append(jobs, j)
		}
	}
	status.Active = nil
	for _, j := range jobs {
		kind, finished := jobFinished(j.Status)
		if !finished {
			status.Active = append(status.Active, jobRef(j))
			continue
		}
		if kind == batchv1.JobComplete && j.Status.CompletionTime != nil &&
			(status.LastSuccessfulTime == nil || j.Status.CompletionTime.After(status.LastSuccessfulTime.Time)) {
			status.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
		}
		if wasActive[string(j.UID)] {
			c.rec.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, condition: %s", j.Name, kind)
		}
	}
	slices.SortFunc(status.Active, func(a, b corev1.ObjectReference) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return nil
}

func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{APIVersion: "batch/v1", Kind: "Job", Namespace: j.Namespace, Name: j.Name, UID: j.UID}
}

// schedule starts the Job of the most recent time of the schedule that has
// none yet, as the concurrency policy and the starting deadline allow, and
// returns how long until the next time.
func (c *CronJobController) schedule(ctx context.Context, cj *batchv1.CronJob, status *batchv1.CronJobStatus, jobs []*batchv1.Job, now time.Time) (time.Duration, error) {
	sched, loc, err := cronSchedule(cj)
	if err != nil {
		c.rec.Eventf(cj, corev1.EventTypeWarning, reasonOf(err), "%v", err)
		return 0, nil // nothing to retry until Git changes it
	}
	nextIn := func() time.Duration {
		return sched.Next(now.In(loc)).Sub(now) + 100*time.Millisecond
	}
	earliest := cj.CreationTimestamp.Time
	if status.LastScheduleTime != nil {
		earliest = status.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if bound := now.Add(-time.Duration(*d) * time.Second); bound.After(earliest) {
			earliest = bound
		}
	}
	scheduled, missed := mostRecentTime(sched, earliest.In(loc), now)
	if scheduled.IsZero() {
		return nextIn(), nil
	}
	if missed > tooManyMissed {
		c.rec.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes",
			"too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", missed)
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		c.rec.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduled.Format(time.RFC3339))
		return nextIn(), nil
	}
	name := fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
	for _, j := range jobs {
		if j.Name == name {
			// Started already (the status write after it may have been
			// lost): the time is taken.
			t := metav1.NewTime(scheduled)
			status.LastScheduleTime = &t
			return nextIn(), nil
		}
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(status.Active) > 0 {
			c.rec.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return nextIn(), nil
		}
	case batchv1.ReplaceConcurrent:
		for _, ref := range status.Active {
			j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name, UID: ref.UID}}
			if err := Delete(ctx, c.st, j, metav1.DeletePropagationBackground); err != nil && !errors.Is(err, store.ErrNotFound) {
				return 0, fmt.Errorf("cronjob %s/%s: replace job %s: %w", cj.Namespace, cj.Name, ref.Name, err)
			}
			c.rec.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %s", ref.Name)
		}
		status.Active = nil
	}
	job := newCronJobJob(cj, name, scheduled.In(loc))
	if err := c.st.Create(ctx, job); err != nil && !errors.Is(err, store.ErrExists) {
		c.rec.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return 0, fmt.Errorf("cronjob %s/%s: create job %s: %w", cj.Namespace, cj.Name, name, err)
	} else if err == nil {
		c.rec.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %s", name)
		status.Active = append(status.Active, jobRef(job))
	}
	t := metav1.NewTime(scheduled)
	status.LastScheduleTime = &t
	return nextIn(), nil
}

// scheduleError is a schedule or time zone that does not parse.
type scheduleError struct {
	reason string
	err    error
}

func (e scheduleError) Error() string { return e.err.Error() }

func reasonOf(err error) string {
	var se scheduleError
	if errors.As(err, &se) {
		return se.reason
	}
	return "FailedSchedule"
}

// cronSchedule parses a CronJob's schedule (five fields, or @hourly and its
// kind) and loads its time zone (the controller's local time when none).
func cronSchedule(cj *batchv1.CronJob) (cron.Schedule, *time.Location, error) {
	sched, err := cron.ParseStandard(cj.Spec.Schedule)
	if err != nil {
		return nil, nil, scheduleError{"UnparseableSchedule", fmt.Errorf("unparseable schedule %q: %w", cj.Spec.Schedule, err)}
	}
	loc := time.Local
	if tz := cj.Spec.TimeZone; tz != nil {
		if loc, err = time.LoadLocation(*tz); err != nil {
			return nil, nil, scheduleError{"UnknownTimeZone", fmt.Errorf("invalid timeZone %q: %w", *tz, err)}
		}
	}
	return sched, loc, nil
}

// maxScheduleSteps bounds the walk through missed times: a schedule of
// every minute missed for two years.
const maxScheduleSteps = 1_100_000

// mostRecentTime is the last time of sched after earliest and not after
// now, and how many times were missed in between (zero time: none).
func mostRecentTime(sched cron.Schedule, earliest, now time.Time) (time.Time, int) {
	var last time.Time
	n := 0
	for t := sched.Next(earliest); !t.IsZero() && !t.After(now) && n < maxScheduleSteps; t = sched.Next(t) {
		last = t
		n++
	}
	return last, n
}

// newCronJobJob is the Job of one scheduled time: the job template's labels,
// annotations and spec, the scheduled time annotation, and the CronJob as
// controller.
func newCronJobJob(cj *batchv1.CronJob, name string, scheduled time.Time) *batchv1.Job {
	t := cj.Spec.JobTemplate.DeepCopy()
	ann := map[string]string{}
	for k, v := range t.Annotations {
		ann[k] = v
	}
	ann[cronJobScheduledTimestamp] = scheduled.Format(time.RFC3339)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cj.Namespace, Name: name, Labels: t.Labels, Annotations: ann,
			OwnerReferences: []metav1.OwnerReference{ownerRef(cj, cronJobGVK)},
		},
		Spec: t.Spec,
	}
}

// cleanHistory deletes the oldest finished Jobs beyond the history limits
// (3 successful, 1 failed by default).
func (c *CronJobController) cleanHistory(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) error {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		switch kind, _ := jobFinished(j.Status); kind {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	var errs []error
	for _, h := range []struct {
		jobs  []*batchv1.Job
		limit *int32
		def   int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit, 3}, {failed, cj.Spec.FailedJobsHistoryLimit, 1}} {
		limit := int(h.def)
		if h.limit != nil {
			limit = int(*h.limit)
		}
		if len(h.jobs) <= limit {
			continue
		}
		slices.SortFunc(h.jobs, func(a, b *batchv1.Job) int { return jobStart(a).Compare(jobStart(b)) })
		for _, j := range h.jobs[:len(h.jobs)-limit] {
			if err := Delete(ctx, c.st, j, metav1.DeletePropagationBackground); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, fmt.Errorf("cronjob %s/%s: delete old job %s: %w", cj.Namespace, cj.Name, j.Name, err))
				continue
			}
			c.rec.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %s", j.Name)
		}
	}
	return errors.Join(errs...)
}

// jobStart orders a CronJob's Jobs: by start time, by creation when not
// started.
func jobStart(j *batchv1.Job) time.Time {
	if j.Status.StartTime != nil {
		return j.Status.StartTime.Time
	}
	return j.CreationTimestamp.Time
}
