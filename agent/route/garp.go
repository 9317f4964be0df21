package route

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	goruntime "runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// gratuitousARP broadcasts an ARP request for ip from ip on the link of
// index ifindex and address hw, in the network namespace at nsPath (the
// caller's when empty): neighbours that knew ip at another node's address
// (the one that held it before) update their entry at once, rather than
// when it expires.
func gratuitousARP(nsPath string, ifindex int, hw net.HardwareAddr, ip netip.Addr) error {
	if len(hw) != 6 || !ip.Is4() {
		return fmt.Errorf("gratuitous ARP for %s: needs an Ethernet link and an IPv4 address", ip)
	}
	frame := make([]byte, 0, 42)
	frame = append(frame, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff) // to everyone
	frame = append(frame, hw...)
	frame = binary.BigEndian.AppendUint16(frame, unix.ETH_P_ARP)
	frame = binary.BigEndian.AppendUint16(frame, 1)             // Ethernet
	frame = binary.BigEndian.AppendUint16(frame, unix.ETH_P_IP) // IPv4
	frame = append(frame, 6, 4)
	frame = binary.BigEndian.AppendUint16(frame, 1) // request
	a := ip.As4()
	frame = append(frame, hw...)
	frame = append(frame, a[:]...)
	frame = append(frame, 0, 0, 0, 0, 0, 0) // target hardware address: unknown
	frame = append(frame, a[:]...)          // target address: its own

	send := func() error {
		proto := int(htons(unix.ETH_P_ARP))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("gratuitous ARP for %s: %w", ip, err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex, Halen: 6}
		copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		if err := unix.Sendto(fd, frame, 0, to); err != nil {
			return fmt.Errorf("gratuitous ARP for %s: %w", ip, err)
		}
		return nil
	}
	if nsPath == "" {
		return send()
	}
	return inNetNS(nsPath, send)
}

// inNetNS runs fn on an OS thread inside the namespace at path. A thread
// that cannot be brought back to its own namespace ends with its
// goroutine, locked, so that no other goroutine runs in the wrong one.
func inNetNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			goruntime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// htons is a 16-bit value in network order, as the packet socket wants its
// protocol.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
