package clusterdns

import (
	"context"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// handle answers one packet, or drops it when it is not a DNS query. Answers
// from the index are written before it returns; those from upstream later,
// by a goroutine of a bounded pool.
func (s *Server) handle(ctx context.Context, pkt []byte, c client, buf []byte, start time.Time) {
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		s.m.dropped.WithLabelValues(dropMalformed).Inc()
		return
	}
	if req.Response {
		// Answering answers would let two servers bounce packets forever.
		s.m.dropped.WithLabelValues(dropResponse).Inc()
		return
	}
	m, src, chase, forward := s.resolve(req)
	if forward || chase != "" {
		s.forward(ctx, req, m, chase, c, start)
		return
	}
	s.send(req, m, c, buf, start, src)
}

// resolve answers a query from the index. It reports forward for names it
// does not serve, and a CNAME target outside the zone to chase upstream.
func (s *Server) resolve(req *dns.Msg) (m *dns.Msg, src, chase string, forward bool) {
	m = new(dns.Msg)
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.SetRcode(req, dns.RcodeNotImplemented)
		return m, sourceLocal, "", false
	case len(req.Question) != 1:
		m.SetRcodeFormatError(req)
		return m, sourceLocal, "", false
	}
	m.SetReply(req)
	m.RecursionAvailable = s.fwd != nil
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		m.Rcode = dns.RcodeBadVers
		return m, sourceLocal, "", false
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return m, sourceLocal, "", false
	}
	name := strings.ToLower(q.Name)
	if rel, ok := s.inZone(name); ok {
		if !s.ready() {
			m.Rcode = dns.RcodeServerFailure
			return m, sourceLocal, "", false
		}
		za := s.answerZone(m, q, rel, 0)
		return m, sourceZone, za.chase, false
	}
	if strings.HasSuffix(name, ".arpa.") && s.ready() && s.answerReverse(m, q, name) {
		return m, sourceZone, "", false
	}
	return m, sourceForward, "", true
}

// ready reports whether the informers have delivered their first lists:
// before that an empty index would deny names that exist.
func (s *Server) ready() bool {
	if s.isSynced.Load() {
		return true
	}
	if s.synced() {
		s.isSynced.Store(true)
		return true
	}
	return false
}

// send writes an answer, cut to the size the client can take over UDP (the
// TC bit tells it to ask again over TCP), with an OPT record when the query
// had one.
func (s *Server) send(req, m *dns.Msg, c client, buf []byte, start time.Time, src string) {
	size := dns.MaxMsgSize
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(ednsSize, opt.Do())
		if c.tcp == nil {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPAnswer)
		}
	} else if c.tcp == nil {
		size = dns.MinMsgSize
	}
	m.Truncate(size)
	out, err := m.PackBuffer(buf)
	if err != nil {
		// Only a record keelson made wrong can get here; say so once and
		// give the client an answer it can act on.
		s.log.Warn("pack DNS answer", "question", m.Question, "error", err)
		fail := new(dns.Msg)
		fail.SetRcode(req, dns.RcodeServerFailure)
		if out, err = fail.PackBuffer(buf); err != nil {
			s.m.dropped.WithLabelValues(dropMalformed).Inc()
			return
		}
		m = fail
	}
	// Counted before the write, so that a client that has its answer sees
	// it counted.
	var qtype uint16
	if len(m.Question) > 0 {
		qtype = m.Question[0].Qtype
	}
	s.m.query(qtype, m.Rcode)
	s.m.durations[src].Observe(time.Since(start).Seconds())
	if err := c.write(out); err != nil {
		s.m.dropped.WithLabelValues(dropWrite).Inc()
	}
}

// forward sends a query upstream, or the addresses of a CNAME target when
// chase is set, in a goroutine of a bounded pool. With forwarding off,
// every upstream down or the pool full, it answers at once: REFUSED when no
// upstream is configured, SERVFAIL otherwise (a chased CNAME goes alone).
func (s *Server) forward(ctx context.Context, req, m *dns.Msg, chase string, c client, start time.Time) {
	refuse := func(rcode int, result string) {
		if chase == "" {
			m.Rcode = rcode
		}
		s.m.forwarded.WithLabelValues(result).Inc()
		s.send(req, m, c, nil, start, sourceLocal)
	}
	switch {
	case s.fwd == nil:
		refuse(dns.RcodeRefused, "off")
		return
	case !s.fwd.available():
		refuse(dns.RcodeServerFailure, "down")
		return
	}
	select {
	case s.fwdSlots <- struct{}{}:
	default:
		refuse(dns.RcodeServerFailure, "overflow")
		return
	}
	s.wg.Go(func() {
		defer func() { <-s.fwdSlots }()
		s.exchange(ctx, req, m, chase, c, start)
	})
}

// exchange asks upstream and writes the answer.
func (s *Server) exchange(ctx context.Context, req, m *dns.Msg, chase string, c client, start time.Time) {
	up := new(dns.Msg)
	if chase != "" {
		up.SetQuestion(chase, req.Question[0].Qtype)
	} else {
		up.Question = req.Question
		up.RecursionDesired, up.CheckingDisabled = req.RecursionDesired, req.CheckingDisabled
	}
	up.Id = dns.Id()
	opt := req.IsEdns0()
	up.SetEdns0(ednsSize, opt != nil && opt.Do())
	r, err := s.fwd.exchange(ctx, up)
	switch {
	case err != nil && chase == "":
		s.m.forwarded.WithLabelValues("failed").Inc()
		m.Rcode = dns.RcodeServerFailure
	case err != nil:
		s.m.forwarded.WithLabelValues("failed").Inc()
	case chase != "":
		s.m.forwarded.WithLabelValues("answered").Inc()
		m.Answer = append(m.Answer, r.Answer...)
	default:
		s.m.forwarded.WithLabelValues("answered").Inc()
		r.Id, r.Question = req.Id, req.Question
		r.Extra = withoutOPT(r.Extra)
		if r.Rcode > 0xF {
			// An extended rcode lives in the OPT record just dropped.
			r.Rcode = dns.RcodeServerFailure
		}
		m = r
	}
	s.send(req, m, c, nil, start, sourceForward)
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}
