package clusterdns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// client is where an answer goes: a UDP peer, a TCP connection, or a
// function of the process itself (fuzzing and benchmarks of the query path
// without sockets), which gets UDP's size limits.
type client struct {
	udp  *net.UDPConn
	to   netip.AddrPort
	from []byte // packet information: the address a UDP answer goes from
	tcp  *tcpConn
	call func([]byte) error
}

// tcpConn serialises the writes of answers on one connection: answers
// from upstream come back from other goroutines, in any order.
type tcpConn struct {
	mu   sync.Mutex
	conn net.Conn
}

func (c client) write(b []byte) error {
	if c.call != nil {
		return c.call(b)
	}
	if c.tcp == nil {
		_, _, err := c.udp.WriteMsgUDPAddrPort(b, c.from, c.to)
		return err
	}
	framed := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(framed, uint16(len(b)))
	copy(framed[2:], b)
	c.tcp.mu.Lock()
	defer c.tcp.mu.Unlock()
	_ = c.tcp.conn.SetWriteDeadline(time.Now().Add(tcpIdleTimeout))
	_, err := c.tcp.conn.Write(framed)
	return err
}

// Serve answers queries until ctx ends, then closes the sockets and waits
// for the queries in flight. It returns nil when ctx ended it.
func (s *Server) Serve(ctx context.Context) error {
	if s.udp == nil {
		return errors.New("clusterdns: Serve called before Listen")
	}
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("clusterdns: Serve called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range udpWorkers {
		s.wg.Go(func() { s.readUDP(ctx) })
	}
	s.wg.Go(func() { s.acceptTCP(ctx) })
	if s.fwd != nil {
		s.wg.Go(func() { s.fwd.check(ctx) })
	}
	s.log.Info("serving cluster DNS", "addr", s.Addr().String(), "zone", s.zone, "forwarding", s.fwd != nil)
	<-ctx.Done()
	_ = s.udp.Close()
	_ = s.tcp.Close()
	s.connMu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.connMu.Unlock()
	s.wg.Wait()
	return nil
}

// readUDP is one of a fixed number of readers of the UDP socket: a flood
// fills the socket's buffer and the kernel drops the rest, instead of the
// server starting a goroutine per packet.
func (s *Server) readUDP(ctx context.Context) {
	in := make([]byte, dns.MaxMsgSize)
	out := make([]byte, dns.MaxMsgSize)
	oob := make([]byte, oobSize)
	for {
		n, oobn, _, from, err := s.udp.ReadMsgUDPAddrPort(in, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.handle(ctx, in[:n], client{udp: s.udp, to: from, from: replyFrom(oob[:oobn], s.udp6)}, out, time.Now())
	}
}

// acceptTCP accepts connections up to a fixed number open at once, and
// closes those beyond it at once.
func (s *Server) acceptTCP(ctx context.Context) {
	for {
		conn, err := s.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept DNS connection", "error", err)
			time.Sleep(50 * time.Millisecond) // out of descriptors: let some close
			continue
		}
		select {
		case s.tcpSlots <- struct{}{}:
		default:
			s.m.dropped.WithLabelValues(dropTCPLimit).Inc()
			_ = conn.Close()
			continue
		}
		s.connMu.Lock()
		if ctx.Err() != nil {
			// Serve may have closed the open connections already: one
			// accepted meanwhile would keep it waiting for its idle timeout.
			s.connMu.Unlock()
			_ = conn.Close()
			<-s.tcpSlots
			return
		}
		s.conns[conn] = struct{}{}
		s.connMu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.connMu.Lock()
				delete(s.conns, conn)
				s.connMu.Unlock()
				_ = conn.Close()
				<-s.tcpSlots
			}()
			s.serveConn(ctx, conn)
		})
	}
}

// serveConn reads length-prefixed queries until the peer closes, stays idle
// too long, or sends something that is not DNS.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	tc := &tcpConn{conn: conn}
	var prefix [2]byte
	for {
		_ = conn.SetReadDeadline(time.Now().Add(tcpIdleTimeout))
		if _, err := io.ReadFull(conn, prefix[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint16(prefix[:])
		if n < 12 { // shorter than a DNS header
			s.m.dropped.WithLabelValues(dropMalformed).Inc()
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(conn, msg); err != nil {
			return
		}
		s.handle(ctx, msg, client{tcp: tc}, nil, time.Now())
	}
}
