package clusterdns

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// A UDP socket bound to every address answers from the address the routing
// table picks for the client, which need not be the one the query went to.
// Pods ask the DNS service's cluster IP, which the node proxy rewrites to the
// control plane's address: an answer from the node's bridge address instead
// does not match the query's connection-tracking entry, is not rewritten
// back to the cluster IP, and the pod's resolver drops it. So the server
// learns each query's destination (IP_PKTINFO) and answers from it.

// oobSize holds one packet-info message of either family.
var oobSize = max(len(unix.PktInfo4(&unix.Inet4Pktinfo{})), len(unix.PktInfo6(&unix.Inet6Pktinfo{})))

// enablePacketInfo asks the kernel for each datagram's destination address,
// and reports whether the socket is IPv6 (dual-stack: IPv4 queries come
// with their addresses mapped).
func enablePacketInfo(c *net.UDPConn) (v6 bool, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	cerr := raw.Control(func(fd uintptr) {
		var domain int
		if domain, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil {
			return
		}
		v6 = domain == unix.AF_INET6
		if v6 {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		} else {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("ask for the destination of queries: %w", err)
	}
	return v6, nil
}

// replyFrom turns the packet information of a query into that of its
// answer: sent from the address the query went to. nil when there is none.
func replyFrom(oob []byte, v6 bool) []byte {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		switch {
		case !v6 && m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO:
			var dst netip.Addr
			if len(m.Data) >= 12 {
				dst = netip.AddrFrom4([4]byte(m.Data[8:12])) // the header's destination
			}
			if !dst.IsValid() || dst.IsMulticast() {
				return nil
			}
			return unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: dst.As4()})
		case v6 && m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO:
			if len(m.Data) < 16 {
				return nil
			}
			dst := netip.AddrFrom16([16]byte(m.Data[:16]))
			if dst.IsMulticast() {
				return nil
			}
			return unix.PktInfo6(&unix.Inet6Pktinfo{Addr: dst.As16()})
		}
	}
	return nil
}
