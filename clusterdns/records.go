package clusterdns

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// inZone reports whether a lower-cased fully qualified name is in the
// cluster zone, and returns the part before the zone ("" for the apex).
func (s *Server) inZone(name string) (string, bool) {
	if name == s.zone {
		return "", true
	}
	if strings.HasSuffix(name, s.dotZone) {
		return name[:len(name)-len(s.dotZone)], true
	}
	return "", false
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
}

// addrRR is an A or AAAA record, as the address is.
func (s *Server) addrRR(name string, a netip.Addr) dns.RR {
	if a.Is4() {
		b := a.As4()
		return &dns.A{Hdr: s.hdr(name, dns.TypeA), A: b[:]}
	}
	b := a.As16()
	return &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: b[:]}
}

// soa is the zone's SOA record; its minimum, the time resolvers keep a
// negative answer, is the records' TTL, so a new service is found as soon
// as a cached address would be.
func (s *Server) soa(zone string) dns.RR {
	return &dns.SOA{
		Hdr: s.hdr(zone, dns.TypeSOA), Ns: s.nsName, Mbox: s.mbox,
		Serial: s.idx.serial.Load(), Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: s.ttl,
	}
}

// nxdomain says the name does not exist, with the zone's SOA for negative
// caching.
func (s *Server) nxdomain(m *dns.Msg) {
	m.Rcode = dns.RcodeNameError
	m.Ns = append(m.Ns[:0], s.soa(s.zone))
}

// nodata says the name exists with no record of the asked type.
func (s *Server) nodata(m *dns.Msg) {
	m.Rcode = dns.RcodeSuccess
	m.Ns = append(m.Ns[:0], s.soa(s.zone))
}

// answerAddrs answers with the addresses of the asked family; rotate starts
// at a different one each time, so that clients taking the first address
// spread over a headless service's endpoints.
func (s *Server) answerAddrs(m *dns.Msg, q dns.Question, addrs []netip.Addr, rotate bool) {
	start := 0
	if rotate && len(addrs) > 1 {
		start = int(s.idx.rr.Add(1) % uint32(len(addrs)))
	}
	for i := range addrs {
		a := addrs[(start+i)%len(addrs)]
		if (q.Qtype == dns.TypeA && a.Is4()) || (q.Qtype == dns.TypeAAAA && a.Is6()) || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, s.addrRR(q.Name, a))
		}
	}
	if len(m.Answer) == 0 {
		s.nodata(m)
	}
}

// serviceSRV adds the SRV records of a service's ports, those of one name
// and protocol when portName is not empty, with the targets' addresses in
// the additional section. A service with a cluster IP points at its own
// name; a headless one at each ready endpoint. It reports whether any port
// matched.
func (s *Server) serviceSRV(m *dns.Msg, q dns.Question, v *view, portName, proto string) bool {
	match := func(p port) bool {
		return p.port != 0 && (portName == "" || (p.name == portName && p.proto == proto))
	}
	first := len(m.Answer)
	switch v.kind {
	case kindClusterIP:
		target := v.name + s.dotZone
		for _, p := range v.ports {
			if match(p) {
				m.Answer = append(m.Answer, &dns.SRV{Hdr: s.hdr(q.Name, dns.TypeSRV), Port: p.port, Target: target})
			}
		}
		if len(m.Answer) > first {
			for _, a := range v.addrs {
				m.Extra = append(m.Extra, s.addrRR(target, a))
			}
		}
	case kindHeadless:
		for _, t := range v.targets {
			name := t.label + "." + v.name + s.dotZone
			n := len(m.Answer)
			for _, p := range t.ports {
				if match(p) {
					m.Answer = append(m.Answer, &dns.SRV{Hdr: s.hdr(q.Name, dns.TypeSRV), Port: p.port, Target: name})
				}
			}
			if len(m.Answer) > n {
				for _, a := range t.addrs {
					m.Extra = append(m.Extra, s.addrRR(name, a))
				}
			}
		}
	}
	n := len(m.Answer) - first
	if n == 0 {
		return false
	}
	// Equal weights that add up to about 100, as CoreDNS gives them.
	w := uint16(max(1, 100/n))
	for _, rr := range m.Answer[first:] {
		if srv, ok := rr.(*dns.SRV); ok {
			srv.Weight = w
		}
	}
	return true
}
