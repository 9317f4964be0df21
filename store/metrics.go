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

// elections are the metrics of Lead, by election name.
var elections = struct {
	leading     *prometheus.GaugeVec
	transitions *prometheus.CounterVec
}{
	leading: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "keelson", Name: "leader",
		Help: "1 while this process leads the election, else 0.",
	}, []string{"election"}),
	transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keelson", Name: "leader_terms_total",
		Help: "Times this process became the election's leader.",
	}, []string{"election"}),
}

// Collectors returns the store's Prometheus collectors, for the server to
// register.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{defaultMetrics.duration, elections.leading, elections.transitions}
}

func (m *metrics) observe(op string, start time.Time, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		outcome = "not_found"
	case errors.Is(err, ErrNotLeader):
		outcome = "not_leader"
	case errors.Is(err, ErrConflict), errors.Is(err, ErrExists):
		outcome = "conflict"
	default:
		outcome = "error"
	}
	m.duration.WithLabelValues(op, outcome).Observe(time.Since(start).Seconds())
}
