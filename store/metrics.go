package store

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	duration *prometheus.HistogramVec
}

var defaultMetrics = &metrics{
	duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "keelson",
		Subsystem: "store",
		Name:      "request_duration_seconds",
		Help:      "Time of store requests to etcd, by operation and outcome.",
		Buckets:   prometheus.ExponentialBuckets(0.0002, 2, 14),
	}, []string{"operation", "outcome"}),
}

// Collectors returns the store's Prometheus collectors, for the server to
// register.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{defaultMetrics.duration}
}

func (m *metrics) observe(op string, start time.Time, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		outcome = "not_found"
	case errors.Is(err, ErrConflict), errors.Is(err, ErrExists):
		outcome = "conflict"
	default:
		outcome = "error"
	}
	m.duration.WithLabelValues(op, outcome).Observe(time.Since(start).Seconds())
}
