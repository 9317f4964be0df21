package clusterdns

import (
	"strconv"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a packet is dropped without an answer, the values of the dropped
// counter's "reason" label.
const (
	dropMalformed = "malformed"
	dropResponse  = "response"
	dropTCPLimit  = "tcp_conn_limit"
	dropWrite     = "write_error"
)

// Where an answer came from, the values of the duration histogram's
// "source" label.
const (
	sourceZone    = "zone"
	sourceForward = "forward"
	sourceLocal   = "local" // refused, format errors, forwarding off
)

// metrics are cluster DNS's Prometheus collectors. The counters of the
// usual query types and rcodes are looked up once here, not at every query:
// a label lookup costs more than the rest of an answer from the index.
type metrics struct {
	queries   *prometheus.CounterVec
	forwarded *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	upstream  *prometheus.GaugeVec

	common    map[uint16]*[dns.RcodeBadCookie + 1]prometheus.Counter
	durations map[string]prometheus.Observer
}

// commonTypes are the query types whose counters are kept at hand.
var commonTypes = []uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeSOA,
	dns.TypeNS, dns.TypeCNAME, dns.TypeTXT, dns.TypeMX, dns.TypeANY,
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keelson", Subsystem: "clusterdns", Name: "queries_total",
			Help: "DNS queries answered, by query type and response code.",
		}, []string{"type", "rcode"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keelson", Subsystem: "clusterdns", Name: "forwarded_total",
			Help: "Queries for names outside the cluster zone, by result: answered or failed upstream, or answered at once because forwarding is off, every upstream is down or too many queries are in flight (off, down, overflow).",
		}, []string{"result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keelson", Subsystem: "clusterdns", Name: "dropped_total",
			Help: "Packets and connections dropped without an answer, by reason.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "keelson", Subsystem: "clusterdns", Name: "request_duration_seconds",
			Help:    "Time from a query's arrival to its answer being written, by source of the answer (zone, forward, local).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18),
		}, []string{"source"}),
		upstream: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "keelson", Subsystem: "clusterdns", Name: "upstream_up",
			Help: "1 when an upstream resolver answers, 0 when it is marked down.",
		}, []string{"upstream"}),
		common:    map[uint16]*[dns.RcodeBadCookie + 1]prometheus.Counter{},
		durations: map[string]prometheus.Observer{},
	}
	for _, t := range commonTypes {
		var row [dns.RcodeBadCookie + 1]prometheus.Counter
		for rc := range row {
			row[rc] = m.queries.WithLabelValues(dns.TypeToString[t], rcodeName(rc))
		}
		m.common[t] = &row
	}
	for _, s := range []string{sourceZone, sourceForward, sourceLocal} {
		m.durations[s] = m.duration.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.queries, m.forwarded, m.dropped, m.duration, m.upstream)
	}
	return m
}

// query counts one answered query.
func (m *metrics) query(qtype uint16, rcode int) {
	if row, ok := m.common[qtype]; ok && rcode >= 0 && rcode < len(row) {
		row[rcode].Inc()
		return
	}
	name, ok := dns.TypeToString[qtype]
	if !ok {
		name = "other"
	}
	m.queries.WithLabelValues(name, rcodeName(rcode)).Inc()
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}
