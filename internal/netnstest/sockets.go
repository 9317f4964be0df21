package netnstest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Reply is what the test servers answer: their name and the client's
// address as they saw it (after any NAT).
type Reply struct {
	Server string
	Client string
}

func parseReply(s string) (Reply, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Reply{}, fmt.Errorf("unexpected reply %q", s)
	}
	return Reply{Server: f[0], Client: f[1]}, nil
}

// ClientIP is the client's address without its port.
func (r Reply) ClientIP() string {
	host, _, err := net.SplitHostPort(r.Client)
	if err != nil {
		return r.Client
	}
	return host
}

// ServeTCP listens on addr inside the namespace and answers each connection
// with "name client-address\n"; t.Cleanup stops it.
func (ns *NS) ServeTCP(t testing.TB, addr, name string) {
	t.Helper()
	var l net.Listener
	err := ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("netns %s: listen tcp %s: %v", ns.Name, addr, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
			c.Close()
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
}

// ServeUDP answers each datagram on addr with "name client-address".
func (ns *NS) ServeUDP(t testing.TB, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	err := ns.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("netns %s: listen udp %s: %v", ns.Name, addr, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(fmt.Appendf(nil, "%s %s", name, from), from)
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
}

// DialTCP connects from inside the namespace and reads a test server's
// answer.
func (ns *NS) DialTCP(addr string, timeout time.Duration) (Reply, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	if err != nil {
		return Reply{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return Reply{}, fmt.Errorf("read from %s: %w", addr, err)
	}
	return parseReply(line)
}

// UDPClient is a connected UDP socket opened inside a namespace: each Ask
// goes out from the same source port, as a long-lived UDP flow does.
type UDPClient struct {
	c *net.UDPConn
}

// DialUDP opens a UDP client in the namespace; Close ends it.
func (ns *NS) DialUDP(addr string) (*UDPClient, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.Dial("udp4", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &UDPClient{c: c.(*net.UDPConn)}, nil
}

// Ask sends a datagram and waits for a test server's answer.
func (u *UDPClient) Ask(timeout time.Duration) (Reply, error) {
	if _, err := u.c.Write([]byte("?")); err != nil {
		return Reply{}, err
	}
	u.c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 1500)
	n, err := u.c.Read(buf)
	if err != nil {
		return Reply{}, err
	}
	return parseReply(string(buf[:n]))
}

// Close closes the socket.
func (u *UDPClient) Close() error { return u.c.Close() }

// IsTimeout reports whether err is a socket timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
