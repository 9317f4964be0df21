package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metricsReconciler reconciles the keys of TestControllerMetrics: each key
// names an outcome.
type metricsReconciler struct {
	mu      sync.Mutex
	calls   map[string]int
	release chan struct{} // closed to let key "block" finish
}

func (r *metricsReconciler) Reconcile(ctx context.Context, key string) (Result, error) {
	r.mu.Lock()
	r.calls[key]++
	n := r.calls[key]
	r.mu.Unlock()
	switch key {
	case "flaky":
		if n <= 2 {
			return Result{}, fmt.Errorf("attempt %d failed", n)
		}
	case "stuck":
		return Result{}, Terminal(errors.New("invalid spec"))
	case "boom":
		if n == 1 {
			panic("boom")
		}
	case "later":
		return Result{RequeueAfter: time.Hour}, nil
	case "block":
		select {
		case <-r.release:
		case <-ctx.Done():
		}
	}
	return Result{}, nil
}

// runMetricsTerm runs a new controller named name over keys until done says it has
// finished them, as a leader term would.
func runMetricsTerm(t *testing.T, name string, rec Reconciler, keys []string, during func(c *Controller), done func() bool) {
	t.Helper()
	c := NewController(name, rec, QueueOptions{Workers: 2, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}, testLog())
	for _, k := range keys {
		c.Enqueue(k)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c.Run(ctx)
	}()
	eventually(t, "workers gauge set", func() (bool, string) {
		v := value(t, controllerWorkers.WithLabelValues(name))
		return v == 2, fmt.Sprintf("workers %v", v)
	})
	if during != nil {
		during(c)
	}
	eventually(t, "keys reconciled", func() (bool, string) {
		return done(), "results " + results(t, name)
	})
	cancel()
	<-stopped
}

func results(t *testing.T, name string) string {
	s := ""
	for _, r := range []string{"success", "requeue_after", "error", "terminal"} {
		s += fmt.Sprintf("%s=%v ", r, value(t, reconcileTotal.WithLabelValues(name, r)))
	}
	return s
}

var metricsTestRuns atomic.Int64

func TestControllerMetrics(t *testing.T) {
	// A name of its own each run: the series outlive the test (-count).
	name := fmt.Sprintf("metrics-test-%d", metricsTestRuns.Add(1))
	rec := &metricsReconciler{calls: map[string]int{}, release: make(chan struct{})}
	count := func(result string) float64 { return value(t, reconcileTotal.WithLabelValues(name, result)) }

	runMetricsTerm(t, name, rec, []string{"ok", "flaky", "stuck", "boom", "later"}, nil, func() bool {
		return count("success") == 3 && count("error") == 3 && count("terminal") == 1 && count("requeue_after") == 1
	})
	// ok, flaky (third try) and boom (second try) succeed; flaky fails twice
	// and boom panics once; later is put back for an hour, which also counts
	// as a retry of the queue.
	checkMetrics(t, name, map[string]float64{
		"success": 3, "requeue_after": 1, "error": 3, "terminal": 1,
		"errors": 4, "panics": 1, "time": 8,
		"adds": 8, "retries": 4, "gets": 8,
	})

	// The next term builds the controller again under the same name.
	runMetricsTerm(t, name, rec, []string{"ok", "stuck", "block"}, func(c *Controller) {
		eventually(t, "a worker shown busy on block", func() (bool, string) {
			active := value(t, controllerActiveWorkers.WithLabelValues(name))
			longest := value(t, queueLongest.WithLabelValues(name))
			return active == 1 && longest > 0, fmt.Sprintf("active %v, longest running %v s", active, longest)
		})
		close(rec.release)
	}, func() bool {
		return count("success") == 5 && count("terminal") == 2
	})
	checkMetrics(t, name, map[string]float64{
		"success": 5, "requeue_after": 1, "error": 3, "terminal": 2,
		"errors": 5, "panics": 1, "time": 11,
		"adds": 11, "retries": 4, "gets": 11,
	})
}

// checkMetrics compares name's series, after its controller has stopped, with
// want; gauges must all be back to 0.
func checkMetrics(t *testing.T, name string, want map[string]float64) {
	t.Helper()
	got := map[string]float64{
		"errors":  value(t, reconcileErrors.WithLabelValues(name)),
		"panics":  value(t, reconcilePanics.WithLabelValues(name)),
		"time":    value(t, reconcileTime.WithLabelValues(name).(prometheus.Collector)),
		"adds":    value(t, queueAdds.WithLabelValues(name)),
		"retries": value(t, queueRetries.WithLabelValues(name)),
		"gets":    value(t, queueLatency.WithLabelValues(name).(prometheus.Collector)),
	}
	for _, r := range []string{"success", "requeue_after", "error", "terminal"} {
		got[r] = value(t, reconcileTotal.WithLabelValues(name, r))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	if done := value(t, queueWorkDuration.WithLabelValues(name).(prometheus.Collector)); done != want["gets"] {
		t.Errorf("work duration samples = %v, want %v", done, want["gets"])
	}
	for what, g := range map[string]prometheus.Gauge{
		"workers":                 controllerWorkers.WithLabelValues(name),
		"active workers":          controllerActiveWorkers.WithLabelValues(name),
		"depth":                   queueDepth.WithLabelValues(name),
		"unfinished work":         queueUnfinished.WithLabelValues(name),
		"longest running process": queueLongest.WithLabelValues(name),
	} {
		if v := value(t, g); v != 0 {
			t.Errorf("%s = %v after the controller stopped, want 0", what, v)
		}
	}
}

// value returns the value of one counter or gauge, or the number of
// observations of one histogram, as a registry serves it. (The client's
// testutil would do, but brings in a module of its own.)
func value(t *testing.T, m prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || len(families[0].GetMetric()) != 1 {
		t.Fatalf("gathered %d families, want one series", len(families))
	}
	x := families[0].GetMetric()[0]
	switch {
	case x.Counter != nil:
		return x.GetCounter().GetValue()
	case x.Gauge != nil:
		return x.GetGauge().GetValue()
	case x.Histogram != nil:
		return float64(x.GetHistogram().GetSampleCount())
	}
	t.Fatalf("%s: not a counter, gauge or histogram", families[0].GetName())
	return 0
}

// TestCollectorsServed checks that every metric is served, with help text,
// from a registry as the server builds it.
func TestCollectorsServed(t *testing.T) {
	c := NewController("metrics-served", ReconcileFunc(func(context.Context, string) (Result, error) {
		return Result{}, nil
	}), QueueOptions{}, testLog())
	t.Cleanup(c.queue.ShutDown)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	help := map[string]string{}
	for _, f := range families {
		help[f.GetName()] = f.GetHelp()
	}
	for _, name := range []string{
		"keelson_controller_reconcile_total",
		"keelson_controller_reconcile_errors_total",
		"keelson_controller_reconcile_time_seconds",
		"keelson_controller_panics_total",
		"keelson_controller_workers",
		"keelson_controller_active_workers",
		"keelson_workqueue_depth",
		"keelson_workqueue_adds_total",
		"keelson_workqueue_queue_duration_seconds",
		"keelson_workqueue_work_duration_seconds",
		"keelson_workqueue_unfinished_work_seconds",
		"keelson_workqueue_longest_running_processor_seconds",
		"keelson_workqueue_retries_total",
	} {
		h, ok := help[name]
		switch {
		case !ok:
			t.Errorf("%s is not served", name)
		case h == "":
			t.Errorf("%s has no help text", name)
		}
		delete(help, name)
	}
	for name := range help {
		t.Errorf("%s is served but not expected here: add it to this test and the README", name)
	}
}
