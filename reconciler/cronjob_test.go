package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// cronEnv runs a CronJob controller's informers and recorder on a store of
// its own, with a fake clock; tests call Reconcile themselves at the times
// they set, so no test waits for a minute to pass.
type cronEnv struct {
	t     *testing.T
	st    *store.Store
	c     *CronJobController
	clock *testingclock.FakeClock
}

func newCronEnv(t *testing.T) *cronEnv {
	st := etcdtest.NewStore(t)
	inf := NewInformers(st, 0, testLog())
	rec := NewRecorder(st, "cronjob-controller", testLog())
	// The first minute after now, and 30 s into it: objects created now
	// are older than every scheduled time the test reaches.
	start := time.Now().Truncate(time.Minute).Add(time.Minute + 30*time.Second)
	clk := testingclock.NewFakeClock(start)
	c := NewCronJobController(st, inf, rec, CronJobOptions{Clock: clk}, QueueOptions{}, testLog())
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	t.Cleanup(c.queue.ShutDown)
	inf.Start(ctx)
	go rec.Run(ctx)
	if !inf.WaitForSync(ctx) {
		t.Fatal("caches never synced")
	}
	return &cronEnv{t: t, st: st, c: c, clock: clk}
}

func newCronJob(name, schedule string, mutate func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: batchv1.CronJobSpec{Schedule: schedule, JobTemplate: batchv1.JobTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "work", Image: "busybox"}}}}},
		}},
	}
	if mutate != nil {
		mutate(cj)
	}
	return cj
}

// settle waits until the controller's caches hold what the store holds for
// the CronJob and the namespace's Jobs.
func (e *cronEnv) settle(name string) {
	e.t.Helper()
	eventually(e.t, "caches caught up", func() (bool, string) {
		cj := &batchv1.CronJob{}
		if err := e.st.Get(e.t.Context(), "default", name, cj); err != nil {
			return false, err.Error()
		}
		cached, ok, _ := e.c.crons.GetIndexer().GetByKey("default/" + name)
		if !ok || cached.(store.Object).GetResourceVersion() != cj.ResourceVersion {
			return false, "cronjob not in the cache yet"
		}
		want := map[string]string{}
		for _, j := range e.jobs() {
			want[j.Name] = j.ResourceVersion
		}
		got := map[string]string{}
		for _, o := range e.c.jobs.GetIndexer().List() {
			j := o.(*batchv1.Job)
			got[j.Name] = j.ResourceVersion
		}
		return fmt.Sprint(want) == fmt.Sprint(got), fmt.Sprintf("jobs %v, cached %v", want, got)
	})
}

// reconcile runs the controller for the CronJob once its caches caught up.
func (e *cronEnv) reconcile(name string) Result {
	e.t.Helper()
	e.settle(name)
	r, err := e.c.Reconcile(e.t.Context(), "default/"+name)
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	return r
}

func (e *cronEnv) jobs() []*batchv1.Job {
	l, err := e.st.List(e.t.Context(), store.MustResource("jobs.batch"), store.ListOptions{Namespace: "default"})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*batchv1.Job
	for _, o := range l.Items {
		out = append(out, o.(*batchv1.Job))
	}
	slices.SortFunc(out, func(a, b *batchv1.Job) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (e *cronEnv) jobNames() []string {
	var names []string
	for _, j := range e.jobs() {
		names = append(names, j.Name)
	}
	return names
}

func (e *cronEnv) cronJob(name string) *batchv1.CronJob {
	cj := &batchv1.CronJob{}
	if err := e.st.Get(e.t.Context(), "default", name, cj); err != nil {
		e.t.Fatal(err)
	}
	return cj
}

// finishJob marks a Job finished, as the Job controller would.
func (e *cronEnv) finishJob(name string, cond batchv1.JobConditionType) {
	e.t.Helper()
	j := &batchv1.Job{}
	if err := e.st.Get(e.t.Context(), "default", name, j); err != nil {
		e.t.Fatal(err)
	}
	now := metav1.NewTime(e.clock.Now())
	j.Status.StartTime = &now
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: cond, Status: corev1.ConditionTrue})
	if cond == batchv1.JobComplete {
		j.Status.CompletionTime = &now
	}
	if err := e.st.UpdateStatus(e.t.Context(), j); err != nil {
		e.t.Fatal(err)
	}
}

// minute is the name suffix of the Job of the scheduled time t.
func minute(t time.Time) string { return fmt.Sprint(t.Unix() / 60) }

// A CronJob of every minute with Forbid: a Job at each minute, named by it
// and annotated with it; no second Job while one runs; the minute missed
// while it ran starts once it finished; status and health follow.
func TestCronJobEveryMinuteForbid(t *testing.T) {
	env := newCronEnv(t)
	cj := newCronJob("tick", "* * * * *", func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent })
	if err := env.st.Create(t.Context(), cj); err != nil {
		t.Fatal(err)
	}
	first := env.clock.Now().Truncate(time.Minute)
	r := env.reconcile("tick")
	if names := env.jobNames(); len(names) != 1 || names[0] != "tick-"+minute(first) {
		t.Fatalf("jobs %v, want tick-%s", names, minute(first))
	}
	if want := 30*time.Second + 100*time.Millisecond; r.RequeueAfter != want {
		t.Errorf("requeue after %s, want %s (the next minute)", r.RequeueAfter, want)
	}
	j := env.jobs()[0]
	if j.Annotations[cronJobScheduledTimestamp] != first.In(time.Local).Format(time.RFC3339) || j.Labels["app"] != "tick" ||
		metav1.GetControllerOf(j).Kind != "CronJob" {
		t.Errorf("job %s: annotations %v labels %v owner %+v", j.Name, j.Annotations, j.Labels, j.OwnerReferences)
	}
	got := env.cronJob("tick")
	if len(got.Status.Active) != 1 || !got.Status.LastScheduleTime.Time.Equal(first) {
		t.Errorf("status %+v", got.Status)
	}
	// A minute later the first still runs: Forbid starts nothing.
	env.clock.Step(time.Minute)
	env.reconcile("tick")
	if names := env.jobNames(); len(names) != 1 {
		t.Fatalf("jobs %v while the first runs, Forbid", names)
	}
	waitEventOn(t, env.st, "tick", "JobAlreadyActive")
	// It finishes: the missed minute starts now.
	env.finishJob("tick-"+minute(first), batchv1.JobComplete)
	env.reconcile("tick")
	second := first.Add(time.Minute)
	if names := env.jobNames(); len(names) != 2 || names[1] != "tick-"+minute(second) {
		t.Fatalf("jobs %v, want the first and tick-%s", names, minute(second))
	}
	got = env.cronJob("tick")
	if len(got.Status.Active) != 1 || got.Status.Active[0].Name != "tick-"+minute(second) || got.Status.LastSuccessfulTime == nil {
		t.Errorf("status %+v", got.Status)
	}
	if h := HealthOf(got); h.Status != Healthy {
		t.Errorf("health %v", h)
	}
	waitEventOn(t, env.st, "tick", "SawCompletedJob")
	// The runs of the next minutes fail: the CronJob is Degraded until a
	// run succeeds. (The second, scheduled before the first succeeded,
	// does not count: health sees the times, not which Job failed.)
	env.finishJob("tick-"+minute(second), batchv1.JobFailed)
	env.clock.Step(time.Minute)
	env.reconcile("tick")
	third := second.Add(time.Minute)
	env.finishJob("tick-"+minute(third), batchv1.JobFailed)
	env.reconcile("tick")
	if h := HealthOf(env.cronJob("tick")); h.Status != Degraded {
		t.Errorf("health after a failed run %v", h)
	}
}

// Replace deletes the running Job at the next time; Allow lets both run.
func TestCronJobConcurrencyPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy batchv1.ConcurrencyPolicy
		want   int
	}{{batchv1.ReplaceConcurrent, 1}, {batchv1.AllowConcurrent, 2}} {
		t.Run(string(tc.policy), func(t *testing.T) {
			env := newCronEnv(t)
			if err := env.st.Create(t.Context(), newCronJob("c", "* * * * *", func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = tc.policy })); err != nil {
				t.Fatal(err)
			}
			env.reconcile("c")
			env.clock.Step(time.Minute)
			env.reconcile("c")
			names := env.jobNames()
			if len(names) != tc.want || names[len(names)-1] != "c-"+minute(env.clock.Now().Truncate(time.Minute)) {
				t.Errorf("jobs %v, want %d, the last of this minute", names, tc.want)
			}
			if got := env.cronJob("c"); len(got.Status.Active) != tc.want {
				t.Errorf("active %v", got.Status.Active)
			}
		})
	}
}

// After a long downtime only the most recent time starts, with a warning
// when more than 100 were missed; past startingDeadlineSeconds, none.
func TestCronJobMissedTimes(t *testing.T) {
	env := newCronEnv(t)
	if err := env.st.Create(t.Context(), newCronJob("late", "* * * * *", nil)); err != nil {
		t.Fatal(err)
	}
	env.clock.Step(3 * time.Hour)
	env.reconcile("late")
	if names := env.jobNames(); len(names) != 1 || names[0] != "late-"+minute(env.clock.Now().Truncate(time.Minute)) {
		t.Fatalf("jobs %v, want only this minute's", names)
	}
	waitEventOn(t, env.st, "late", "TooManyMissedTimes")

	if err := env.st.Create(t.Context(), newCronJob("strict", "0 * * * *", func(cj *batchv1.CronJob) {
		cj.Spec.StartingDeadlineSeconds = ptr.To[int64](20)
	})); err != nil {
		t.Fatal(err)
	}
	// 30 s past the hour: the deadline of 20 s has passed.
	env.clock.SetTime(env.clock.Now().Truncate(time.Hour).Add(time.Hour + 30*time.Second))
	env.reconcile("strict")
	for _, n := range env.jobNames() {
		if strings.HasPrefix(n, "strict-") {
			t.Errorf("job %s started past its deadline", n)
		}
	}
	env.clock.SetTime(env.clock.Now().Truncate(time.Hour).Add(time.Hour + 10*time.Second))
	env.reconcile("strict")
	if !slices.Contains(env.jobNames(), "strict-"+minute(env.clock.Now().Truncate(time.Hour))) {
		t.Errorf("jobs %v: none for the hour, 10 s into it", env.jobNames())
	}
}

// Finished Jobs beyond the history limits go, oldest first.
func TestCronJobHistoryLimits(t *testing.T) {
	env := newCronEnv(t)
	if err := env.st.Create(t.Context(), newCronJob("hist", "* * * * *", func(cj *batchv1.CronJob) {
		cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit = ptr.To[int32](2), ptr.To[int32](1)
	})); err != nil {
		t.Fatal(err)
	}
	var made []string
	for i := range 6 {
		env.reconcile("hist")
		name := "hist-" + minute(env.clock.Now().Truncate(time.Minute))
		made = append(made, name)
		cond := batchv1.JobComplete
		if i%2 == 1 {
			cond = batchv1.JobFailed
		}
		env.finishJob(name, cond)
		env.clock.Step(time.Minute)
	}
	env.clock.Step(-time.Minute + 5*time.Second) // no new minute: only the cleanup
	env.reconcile("hist")
	// made: 0 ok, 1 failed, 2 ok, 3 failed, 4 ok, 5 failed.
	want := []string{made[2], made[4], made[5]}
	slices.Sort(want)
	if names := env.jobNames(); !slices.Equal(names, want) {
		t.Errorf("jobs %v, want %v", names, want)
	}
}

// A time zone moves the schedule; a bad one, a bad schedule, and suspend
// start nothing.
func TestCronJobTimeZoneAndRefusals(t *testing.T) {
	env := newCronEnv(t)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.st.Create(t.Context(), newCronJob("morning", "0 9 * * *", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Asia/Tokyo") })); err != nil {
		t.Fatal(err)
	}
	// 09:00:30 in Tokyo, the next such moment.
	nine := env.clock.Now().In(tokyo).Truncate(time.Hour)
	for nine.Hour() != 9 || !nine.After(env.clock.Now()) {
		nine = nine.Add(time.Hour)
	}
	env.clock.SetTime(nine.Add(30 * time.Second))
	env.reconcile("morning")
	jobs := env.jobs()
	if len(jobs) != 1 || jobs[0].Annotations[cronJobScheduledTimestamp] != nine.Format(time.RFC3339) || !strings.HasSuffix(nine.Format(time.RFC3339), "+09:00") {
		t.Fatalf("jobs %v, want one scheduled at %s", env.jobNames(), nine.Format(time.RFC3339))
	}
	for _, tc := range []struct{ name, schedule, tz, reason string }{
		{"badzone", "* * * * *", "Mars/Olympus", "UnknownTimeZone"},
		{"badschedule", "every minute", "", "UnparseableSchedule"},
	} {
		if err := env.st.Create(t.Context(), newCronJob(tc.name, tc.schedule, func(cj *batchv1.CronJob) {
			if tc.tz != "" {
				cj.Spec.TimeZone = ptr.To(tc.tz)
			}
		})); err != nil {
			t.Fatal(err)
		}
		env.clock.Step(2 * time.Minute)
		env.reconcile(tc.name)
		waitEventOn(t, env.st, tc.name, tc.reason)
		if h := HealthOf(env.cronJob(tc.name)); h.Status != Degraded || !strings.Contains(h.Message, "no Job is ever started") {
			t.Errorf("%s: health %v", tc.name, h)
		}
	}
	if err := env.st.Create(t.Context(), newCronJob("paused", "* * * * *", func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptr.To(true) })); err != nil {
		t.Fatal(err)
	}
	env.clock.Step(2 * time.Minute)
	env.reconcile("paused")
	for _, n := range env.jobNames() {
		if !strings.HasPrefix(n, "morning-") {
			t.Errorf("job %s started", n)
		}
	}
	if h := HealthOf(env.cronJob("paused")); h.Status != Suspended {
		t.Errorf("health %v", h)
	}
}

// waitEventOn waits for an Event about CronJob name with reason.
func waitEventOn(t *testing.T, st *store.Store, name, reason string) {
	t.Helper()
	eventually(t, "event "+reason+" on "+name, func() (bool, string) {
		var seen []string
		for _, ev := range listEvents(t, st) {
			if ev.InvolvedObject.Kind == "CronJob" && ev.InvolvedObject.Name == name {
				if ev.Reason == reason {
					return true, ""
				}
				seen = append(seen, ev.Reason)
			}
		}
		return false, fmt.Sprint(seen)
	})
}
