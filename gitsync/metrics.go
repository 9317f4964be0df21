package gitsync

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of every sync of the process, labelled by sync name.
var (
	syncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "keelson", Subsystem: "gitsync", Name: "sync_duration_seconds",
		Help:    "Time of sync attempts, from resolving the revision to the last write, by result (a reason).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"sync", "result"})
	lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "keelson", Subsystem: "gitsync", Name: "last_success_timestamp_seconds",
		Help: "When a revision was last applied, in Unix seconds.",
	}, []string{"sync"})
	objectsApplied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keelson", Subsystem: "gitsync", Name: "objects_applied_total",
		Help: "Objects written by syncs, by action (create, update, delete).",
	}, []string{"sync", "action"})
	syncErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keelson", Subsystem: "gitsync", Name: "sync_errors_total",
		Help: "Failed sync attempts, by reason (ValidationFailed, FetchFailed, ApplyFailed, VerificationFailed).",
	}, []string{"sync", "reason"})
	driftCorrections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keelson", Subsystem: "gitsync", Name: "drift_corrections_total",
		Help: "Objects put back to Git's version after a change behind Git's back.",
	}, []string{"sync"})
)

// Collectors returns gitsync's Prometheus collectors, for the server to
// register.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{syncDuration, lastSuccess, objectsApplied, syncErrors, driftCorrections}
}

// observe counts one attempt of sync name.
func observe(name string, st Status, res *Result) {
	syncDuration.WithLabelValues(name, st.Reason).Observe(st.Duration.Seconds())
	if st.Reason != ReasonSucceeded {
		syncErrors.WithLabelValues(name, st.Reason).Inc()
		return
	}
	lastSuccess.WithLabelValues(name).Set(float64(st.LastAppliedTime.UnixNano()) / float64(time.Second))
	if res == nil {
		return
	}
	objectsApplied.WithLabelValues(name, string(Create)).Add(float64(res.Created))
	objectsApplied.WithLabelValues(name, string(Update)).Add(float64(res.Updated))
	objectsApplied.WithLabelValues(name, string(Delete)).Add(float64(res.Deleted))
	driftCorrections.WithLabelValues(name).Add(float64(res.DriftCorrected))
}
