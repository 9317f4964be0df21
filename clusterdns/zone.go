package clusterdns

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// maxChase bounds how many ExternalName CNAMEs inside the zone one answer
// follows, so that two services naming each other cannot loop.
const maxChase = 8

// zoneAnswer is what answering from the index decided: the reply is
// complete, unless chase names a CNAME target outside the zone whose
// addresses are to be asked upstream.
type zoneAnswer struct {
	chase string
}

// lastLabel splits a name without trailing dot at its last dot:
// "a.b.c" → "a.b", "c".
func lastLabel(name string) (rest, label string) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

// answerZone answers a question for a name in the cluster zone; rel is the
// lower-cased name before the zone, "" for the zone itself. Names are
// <svc>.<ns>.svc, <endpoint>.<svc>.<ns>.svc, _<port>._<proto>.<svc>.<ns>.svc,
// <dashed-ip>.<ns>.pod and ns.dns (the zone's name server).
func (s *Server) answerZone(m *dns.Msg, q dns.Question, rel string, depth int) zoneAnswer {
	m.Authoritative = true
	rest, kind := lastLabel(rel)
	switch {
	case rel == "":
		s.answerApex(m, q)
	case kind == "svc":
		return s.answerSvc(m, q, rest, depth)
	case kind == "pod":
		s.answerPod(m, q, rest)
	case kind == "dns" && rest == "":
		s.nodata(m)
	case kind == "dns" && rest == "ns":
		s.answerAddrs(m, q, s.idx.dnsAddrs(), false)
	default:
		s.nxdomain(m)
	}
	return zoneAnswer{}
}

func (s *Server) answerApex(m *dns.Msg, q dns.Question) {
	switch q.Qtype {
	case dns.TypeSOA:
		m.Answer = append(m.Answer, s.soa(q.Name))
	case dns.TypeNS, dns.TypeANY:
		m.Answer = append(m.Answer, &dns.NS{Hdr: s.hdr(q.Name, dns.TypeNS), Ns: s.nsName})
		for _, a := range s.idx.dnsAddrs() {
			m.Extra = append(m.Extra, s.addrRR(s.nsName, a))
		}
	default:
		s.nodata(m)
	}
}

// answerSvc answers names under svc.<zone>; rest is the name before "svc".
func (s *Server) answerSvc(m *dns.Msg, q dns.Question, rest string, depth int) zoneAnswer {
	if rest == "" {
		s.nodata(m) // svc.<zone> has names below it
		return zoneAnswer{}
	}
	rest, ns := lastLabel(rest)
	if rest == "" {
		if s.idx.hasNamespace(ns) {
			s.nodata(m)
		} else {
			s.nxdomain(m)
		}
		return zoneAnswer{}
	}
	rest, name := lastLabel(rest)
	v := s.idx.view(ns, name)
	if v == nil {
		s.nxdomain(m)
		return zoneAnswer{}
	}
	if rest == "" {
		return s.answerService(m, q, v, depth)
	}
	rest, label := lastLabel(rest)
	switch {
	case rest == "" && strings.HasPrefix(label, "_"):
		// _tcp.<svc>: a name only when an SRV record lies below it.
		if v.protos[label] {
			s.nodata(m)
		} else {
			s.nxdomain(m)
		}
	case rest == "":
		s.answerEndpoint(m, q, v, label)
	case strings.HasPrefix(rest, "_") && strings.HasPrefix(label, "_") && !strings.Contains(rest, "."):
		s.answerPortSRV(m, q, v, rest[1:], label)
	default:
		s.nxdomain(m)
	}
	return zoneAnswer{}
}

func (s *Server) answerService(m *dns.Msg, q dns.Question, v *view, depth int) zoneAnswer {
	switch {
	case v.kind == kindExternalName:
		// Only an address question follows the CNAME.
		if q.Qtype != dns.TypeA && q.Qtype != dns.TypeAAAA {
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: s.hdr(q.Name, dns.TypeCNAME), Target: v.externalName})
			return zoneAnswer{}
		}
		return s.chaseCNAME(m, q, v.externalName, depth)
	case q.Qtype == dns.TypeSRV:
		if !s.serviceSRV(m, q, v, "", "") {
			s.nodata(m)
		}
	default:
		s.answerAddrs(m, q, v.addrs, v.kind == kindHeadless)
	}
	return zoneAnswer{}
}

// chaseCNAME answers an address query at an ExternalName: the CNAME, then
// the target's addresses, from the index when the target is in the zone.
func (s *Server) chaseCNAME(m *dns.Msg, q dns.Question, target string, depth int) zoneAnswer {
	m.Answer = append(m.Answer, &dns.CNAME{Hdr: s.hdr(q.Name, dns.TypeCNAME), Target: target})
	rel, in := s.inZone(target)
	if !in {
		return zoneAnswer{chase: target}
	}
	if depth >= maxChase {
		return zoneAnswer{}
	}
	sub := new(dns.Msg)
	za := s.answerZone(sub, dns.Question{Name: target, Qtype: q.Qtype, Qclass: q.Qclass}, rel, depth+1)
	m.Answer = append(m.Answer, sub.Answer...)
	if len(sub.Answer) == 0 {
		m.Ns = sub.Ns
	}
	return za
}

func (s *Server) answerEndpoint(m *dns.Msg, q dns.Question, v *view, label string) {
	t := v.hosts[label]
	if t == nil {
		s.nxdomain(m)
		return
	}
	s.answerAddrs(m, q, t.addrs, false)
}

// answerPortSRV answers _<port>._<proto>.<svc>.<ns>.svc.<zone>.
func (s *Server) answerPortSRV(m *dns.Msg, q dns.Question, v *view, portName, proto string) {
	if !s.serviceSRV(m, q, v, portName, proto) {
		s.nxdomain(m)
		return
	}
	if q.Qtype != dns.TypeSRV {
		m.Answer, m.Extra = m.Answer[:0], m.Extra[:0]
		s.nodata(m)
	}
}

// answerPod answers <dashed-ip>.<ns>.pod.<zone> with the address the name
// spells, whatever pod has it (CoreDNS's "pods insecure").
func (s *Server) answerPod(m *dns.Msg, q dns.Question, rest string) {
	if rest == "" {
		s.nodata(m) // pod.<zone> has names below it
		return
	}
	ip, _ := lastLabel(rest) // any namespace, as CoreDNS's "pods insecure"
	if strings.Contains(ip, ".") {
		s.nxdomain(m)
		return
	}
	if ip == "" {
		s.nodata(m)
		return
	}
	a, ok := undash(ip)
	if !ok {
		s.nxdomain(m)
		return
	}
	s.answerAddrs(m, q, []netip.Addr{a}, false)
}

// undash parses a dashed address label: 10-42-0-5 or 2001-db8--1.
func undash(label string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ".")); err == nil && a.Is4() {
		return a, true
	}
	a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":"))
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}
