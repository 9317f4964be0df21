package route

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keelson/keelson/internal/netnstest"
)

// arpSeen is one gratuitous ARP a neighbour received.
type arpSeen struct {
	op       uint16
	senderHW net.HardwareAddr
	targetHW net.HardwareAddr
	at       time.Time
}

// arpListener reads the ARP frames arriving on a namespace's eth0.
type arpListener struct{ fd int }

func listenARP(t *testing.T, ns *netnstest.NS) *arpListener {
	t.Helper()
	l := &arpListener{fd: -1}
	err := ns.Do(func() error {
		eth0, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		if err != nil {
			return err
		}
		l.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: eth0.Index}); err != nil {
			return err
		}
		tv := unix.NsecToTimeval((20 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if l.fd >= 0 {
		t.Cleanup(func() { unix.Close(l.fd) })
	}
	if err != nil {
		t.Fatalf("listen for ARP in %s: %v", ns.Name, err)
	}
	return l
}

// collect reads for d and returns the gratuitous ARPs of ip (sender and
// target address both ip), in their order.
func (l *arpListener) collect(t *testing.T, ip netip.Addr, d time.Duration) []arpSeen {
	t.Helper()
	var out []arpSeen
	buf := make([]byte, 1500)
	want := ip.As4()
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, _, err := unix.Recvfrom(l.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("read ARP: %v", err)
		}
		// Ethernet header (14), then the ARP packet: sender at 8, target at 18.
		p := buf[14:n]
		if n < 14+28 || !bytes.Equal(p[14:18], want[:]) || !bytes.Equal(p[24:28], want[:]) {
			continue
		}
		out = append(out, arpSeen{op: binary.BigEndian.Uint16(p[6:8]), senderHW: bytes.Clone(p[8:14]),
			targetHW: bytes.Clone(p[18:24]), at: time.Now()})
	}
	return out
}

// TestGratuitousARPRepeats: an address taken is announced in garpRounds
// rounds garpInterval apart, each round an ARP request and an ARP reply
// from the node's hardware address; a withdrawn address is announced no
// more, and stop ends the announcements going on (the package's goleak
// check finds any goroutine left).
func TestGratuitousARPRepeats(t *testing.T) {
	defer func(r int, i time.Duration) { garpRounds, garpInterval = r, i }(garpRounds, garpInterval)
	garpRounds, garpInterval = 4, 100*time.Millisecond

	a, b := netnstest.New(t, "garp-a"), netnstest.New(t, "garp-b")
	netnstest.Link(t, a, "eth0", "192.168.61.1/24", b, "eth0", "192.168.61.2/24")
	eth0, err := a.NL.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	hw, index := eth0.Attrs().HardwareAddr, eth0.Attrs().Index
	l := listenARP(t, b)
	ann := newAnnouncer(a.Path, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	defer ann.stop()

	// Every round, in full.
	ip := netip.MustParseAddr("192.168.61.240")
	if err := ann.announce(ip, index, hw); err != nil {
		t.Fatal(err)
	}
	seen := l.collect(t, ip, time.Duration(garpRounds+2)*garpInterval)
	if len(seen) != 2*garpRounds {
		t.Fatalf("%d announcements of %s, want %d (%d rounds of request and reply)", len(seen), ip, 2*garpRounds, garpRounds)
	}
	for i, s := range seen {
		wantOp, wantTarget := uint16(arpRequest), net.HardwareAddr{0, 0, 0, 0, 0, 0}
		if i%2 == 1 {
			wantOp, wantTarget = arpReply, broadcast
		}
		if s.op != wantOp || s.senderHW.String() != hw.String() || s.targetHW.String() != wantTarget.String() {
			t.Errorf("announcement %d: op %d from %s to %s, want op %d from %s to %s", i, s.op, s.senderHW, s.targetHW, wantOp, hw, wantTarget)
		}
	}
	if gap := seen[len(seen)-1].at.Sub(seen[0].at); gap < time.Duration(garpRounds-1)*garpInterval*9/10 {
		t.Errorf("the rounds took %v, want about %v: they are not spaced", gap, time.Duration(garpRounds-1)*garpInterval)
	}

	// Withdrawn after the first round: no more.
	ip2 := netip.MustParseAddr("192.168.61.241")
	if err := ann.announce(ip2, index, hw); err != nil {
		t.Fatal(err)
	}
	ann.withdraw(ip2)
	if seen := l.collect(t, ip2, time.Duration(garpRounds+1)*garpInterval); len(seen) != 2 {
		t.Errorf("%d announcements of a withdrawn address, want the first round's 2", len(seen))
	}

	// Announced again while announcing: the rounds start over, once.
	ip3 := netip.MustParseAddr("192.168.61.242")
	for range 2 {
		if err := ann.announce(ip3, index, hw); err != nil {
			t.Fatal(err)
		}
	}
	if seen := l.collect(t, ip3, time.Duration(garpRounds+2)*garpInterval); len(seen) != 2*(garpRounds+1) {
		t.Errorf("%d announcements of an address announced twice, want %d", len(seen), 2*(garpRounds+1))
	}

	// stop ends what is going on.
	ip4 := netip.MustParseAddr("192.168.61.243")
	if err := ann.announce(ip4, index, hw); err != nil {
		t.Fatal(err)
	}
	ann.stop()
	if seen := l.collect(t, ip4, time.Duration(garpRounds+1)*garpInterval); len(seen) != 2 {
		t.Errorf("%d announcements after stop, want the first round's 2", len(seen))
	}
}
