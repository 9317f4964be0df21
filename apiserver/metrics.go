package apiserver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus collectors.
type metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	watchers     *prometheus.GaugeVec
	watchEvents  *prometheus.CounterVec
	slowWatchers *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keelson", Subsystem: "apiserver", Name: "requests_total",
			Help: "API requests by verb, resource and HTTP code.",
		}, []string{"verb", "resource", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "keelson", Subsystem: "apiserver", Name: "request_duration_seconds",
			Help:    "API request latency by verb and resource (watches: until the first byte).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"verb", "resource"}),
		watchers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "keelson", Subsystem: "apiserver", Name: "watchers",
			Help: "Open client watches by resource.",
		}, []string{"resource"}),
		watchEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keelson", Subsystem: "apiserver", Name: "watch_events_total",
			Help: "Watch events sent to clients by resource.",
		}, []string{"resource"}),
		slowWatchers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keelson", Subsystem: "apiserver", Name: "slow_watchers_dropped_total",
			Help: "Client watches dropped because they fell too far behind, by resource.",
		}, []string{"resource"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.watchers, m.watchEvents, m.slowWatchers)
	}
	return m
}
