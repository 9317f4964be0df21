package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// Metrics of every controller of the process, labelled by controller name,
// after controller-runtime's. They are made once: each leader term builds its
// controllers afresh under the same names, and they go on counting in the
// same series.
var (
	reconcileTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keelson", Subsystem: "controller", Name: "reconcile_total",
		Help: "Reconciles by result: success, requeue_after (succeeded, to look again later), error (retried with back-off) or terminal (not retried).",
	}, []string{"controller", "result"})
	reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keelson", Subsystem: "controller", Name: "reconcile_errors_total",
		Help: "Reconciles that returned an error, retried or terminal, panics included.",
	}, []string{"controller"})
	reconcileTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "keelson", Subsystem: "controller", Name: "reconcile_time_seconds",
		Help: "Time of one Reconcile of a key.",
		// controller-runtime's buckets, so that its dashboards fit.
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
			1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60},
	}, []string{"controller"})
	reconcilePanics = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keelson", Subsystem: "controller", Name: "panics_total",
		Help: "Reconciles that panicked; each is recovered and retried as an error.",
	}, []string{"controller"})
	controllerWorkers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "keelson", Subsystem: "controller", Name: "workers",
		Help: "Workers of the controller while it runs (0 when this process does not lead).",
	}, []string{"controller"})
	controllerActiveWorkers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "keelson", Subsystem: "controller", Name: "active_workers",
		Help: "Workers reconciling a key at the moment.",
	}, []string{"controller"})
)

// Metrics of the controllers' work queues, labelled by queue (controller)
// name, with the names client-go's and controller-runtime's dashboards read.
var (
	queueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "keelson", Subsystem: "workqueue", Name: "depth",
		Help: "Keys waiting in the work queue.",
	}, []string{"name"})
	queueAdds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keelson", Subsystem: "workqueue", Name: "adds_total",
		Help: "Keys added to the work queue (a key already waiting is not counted again).",
	}, []string{"name"})
	queueLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "keelson", Subsystem: "workqueue", Name: "queue_duration_seconds",
		Help:    "Time a key waits in the work queue before a worker takes it.",
		Buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
	}, []string{"name"})
	queueWorkDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "keelson", Subsystem: "workqueue", Name: "work_duration_seconds",
		Help:    "Time a worker holds a key, from taking it to being done with it.",
		Buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
	}, []string{"name"})
	queueUnfinished = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "keelson", Subsystem: "workqueue", Name: "unfinished_work_seconds",
		Help: "Seconds spent so far on the keys being worked on and not yet done. Growing steadily means stuck workers; its rate is how many.",
	}, []string{"name"})
	queueLongest = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "keelson", Subsystem: "workqueue", Name: "longest_running_processor_seconds",
		Help: "Seconds the longest-running worker has been on its current key.",
	}, []string{"name"})
	queueRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keelson", Subsystem: "workqueue", Name: "retries_total",
		Help: "Keys put back in the work queue with a delay: retries after an error, requeue_after and other checks set for later.",
	}, []string{"name"})
)

// Collectors returns the controllers' Prometheus collectors, for the server
// to register.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		reconcileTotal, reconcileErrors, reconcileTime, reconcilePanics, controllerWorkers, controllerActiveWorkers,
		queueDepth, queueAdds, queueLatency, queueWorkDuration, queueUnfinished, queueLongest, queueRetries,
	}
}

// controllerMetrics are one controller's series, looked up once.
type controllerMetrics struct {
	success, requeueAfter, errored, terminal prometheus.Counter
	errors, panics                           prometheus.Counter
	time                                     prometheus.Observer
	workers, active                          prometheus.Gauge
}

func newControllerMetrics(name string) controllerMetrics {
	return controllerMetrics{
		success:      reconcileTotal.WithLabelValues(name, "success"),
		requeueAfter: reconcileTotal.WithLabelValues(name, "requeue_after"),
		errored:      reconcileTotal.WithLabelValues(name, "error"),
		terminal:     reconcileTotal.WithLabelValues(name, "terminal"),
		errors:       reconcileErrors.WithLabelValues(name),
		panics:       reconcilePanics.WithLabelValues(name),
		time:         reconcileTime.WithLabelValues(name),
		workers:      controllerWorkers.WithLabelValues(name),
		active:       controllerActiveWorkers.WithLabelValues(name),
	}
}

// queueMetrics gives client-go's work queues their series. It is passed to
// each queue rather than set with workqueue.SetProvider, which would count
// every queue of the process, informers' included, and takes only one
// provider for good.
type queueMetrics struct{}

var _ workqueue.MetricsProvider = queueMetrics{}

func (queueMetrics) NewDepthMetric(name string) workqueue.GaugeMetric {
	return queueDepth.WithLabelValues(name)
}

func (queueMetrics) NewAddsMetric(name string) workqueue.CounterMetric {
	return queueAdds.WithLabelValues(name)
}

func (queueMetrics) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return queueLatency.WithLabelValues(name)
}

func (queueMetrics) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return queueWorkDuration.WithLabelValues(name)
}

func (queueMetrics) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return queueUnfinished.WithLabelValues(name)
}

func (queueMetrics) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return queueLongest.WithLabelValues(name)
}

func (queueMetrics) NewRetriesMetric(name string) workqueue.CounterMetric {
	return queueRetries.WithLabelValues(name)
}

// stopQueueMetrics zeroes the gauges a stopped queue no longer updates, so
// that a process that stopped leading does not show a stuck worker.
func stopQueueMetrics(name string) {
	queueUnfinished.WithLabelValues(name).Set(0)
	queueLongest.WithLabelValues(name).Set(0)
}
