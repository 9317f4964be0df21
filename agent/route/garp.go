package route

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keelson/keelson/agent/network"
)

// An address a node takes is announced garpRounds times, garpInterval
// apart, as MetalLB and keepalived repeat theirs: one frame is easily lost,
// or arrives while a switch is still learning the port, and the segment
// would then send to the node that held the address until its entries
// expire (minutes on some routers).
var (
	garpRounds   = 5
	garpInterval = time.Second
)

// announcer repeats the gratuitous ARP of each address the node has taken,
// each in a goroutine of its own that ends when the rounds are done, when
// the address is withdrawn, or at stop, which waits for them all.
type announcer struct {
	nsPath string
	log    *slog.Logger

	mu     sync.Mutex
	active map[netip.Addr]context.CancelFunc
	wg     sync.WaitGroup
}

func newAnnouncer(nsPath string, log *slog.Logger) *announcer {
	return &announcer{nsPath: nsPath, log: log, active: map[netip.Addr]context.CancelFunc{}}
}

// announce tells the segment now, and for the following rounds, that ip is
// at hw on the link of index ifindex; an announcement of ip still going on
// is replaced. Only the first round's error is returned: later ones are
// logged.
func (a *announcer) announce(ip netip.Addr, ifindex int, hw net.HardwareAddr) error {
	a.withdraw(ip)
	if err := gratuitousARP(a.nsPath, ifindex, hw, ip); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.active[ip] = cancel
	a.mu.Unlock()
	a.wg.Go(func() {
		defer a.done(ctx, ip)
		t := time.NewTicker(garpInterval)
		defer t.Stop()
		for range garpRounds - 1 {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := gratuitousARP(a.nsPath, ifindex, hw, ip); err != nil {
				a.log.Warn("gratuitous ARP not sent", "address", ip, "err", err)
			}
		}
	})
	return nil
}

// done forgets ip's announcement, unless a newer one took its place.
func (a *announcer) done(ctx context.Context, ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cancel, ok := a.active[ip]; ok && ctx.Err() == nil {
		cancel()
		delete(a.active, ip)
	}
}

// withdraw ends the announcement of ip, if one is going on.
func (a *announcer) withdraw(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cancel, ok := a.active[ip]; ok {
		cancel()
		delete(a.active, ip)
	}
}

// stop ends every announcement and waits for their goroutines.
func (a *announcer) stop() {
	a.mu.Lock()
	for ip, cancel := range a.active {
		cancel()
		delete(a.active, ip)
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// gratuitousARP broadcasts two announcements of ip at hw on the link of
// index ifindex, in the network namespace at nsPath (the caller's when
// empty): an ARP request for ip from ip (RFC 5227's announcement) and an
// ARP reply of the same (RFC 5944's form, which some hosts and switches
// heed instead). Neighbours that knew ip at another node's address (the
// one that held it before) update their entry at once, rather than when it
// expires.
func gratuitousARP(nsPath string, ifindex int, hw net.HardwareAddr, ip netip.Addr) error {
	if len(hw) != 6 || !ip.Is4() {
		return fmt.Errorf("gratuitous ARP for %s: needs an Ethernet link and an IPv4 address", ip)
	}
	send := func() error {
		proto := int(htons(unix.ETH_P_ARP))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("gratuitous ARP for %s: %w", ip, err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex, Halen: 6}
		copy(to.Addr[:], broadcast)
		for _, op := range []uint16{arpRequest, arpReply} {
			if err := unix.Sendto(fd, arpFrame(op, hw, ip), 0, to); err != nil {
				return fmt.Errorf("gratuitous ARP for %s: %w", ip, err)
			}
		}
		return nil
	}
	if nsPath == "" {
		return send()
	}
	return network.InNetNS(nsPath, send)
}

// ARP operations.
const (
	arpRequest = 1
	arpReply   = 2
)

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpFrame is the Ethernet frame of a gratuitous ARP of operation op:
// sender and target address both ip, to everyone. The target hardware
// address is unknown (zero) in a request and everyone in a reply.
func arpFrame(op uint16, hw net.HardwareAddr, ip netip.Addr) []byte {
	frame := make([]byte, 0, 42)
	frame = append(frame, broadcast...)
	frame = append(frame, hw...)
	frame = binary.BigEndian.AppendUint16(frame, unix.ETH_P_ARP)
	frame = binary.BigEndian.AppendUint16(frame, 1)             // Ethernet
	frame = binary.BigEndian.AppendUint16(frame, unix.ETH_P_IP) // IPv4
	frame = append(frame, 6, 4)
	frame = binary.BigEndian.AppendUint16(frame, op)
	a := ip.As4()
	frame = append(frame, hw...)
	frame = append(frame, a[:]...)
	if op == arpReply {
		frame = append(frame, broadcast...)
	} else {
		frame = append(frame, 0, 0, 0, 0, 0, 0)
	}
	frame = append(frame, a[:]...)
	return frame
}

// htons is a 16-bit value in network order, as the packet socket wants its
// protocol.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
