package proxy

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nftConn is a lasting nftables netlink connection into one network
// namespace.
type nftConn struct {
	*nftables.Conn
	ns   *os.File // nil for the caller's namespace
	sock *netlink.Conn
	buf  int // socket buffer size set so far
}

// openNetNS opens the namespace at path, checking that it is one, so that a
// wrong path is a clear error rather than netlink's EINVAL.
func openNetNS(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		f.Close()
		return nil, fmt.Errorf("network namespace %s: not a namespace (no nsfs mount there)", path)
	}
	return f, nil
}

func dialNFT(netnsPath string) (*nftConn, error) {
	ns, err := openNetNS(netnsPath)
	if err != nil {
		return nil, err
	}
	n := &nftConn{ns: ns}
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(func(c *netlink.Conn) error {
		n.sock = c
		return nil
	})}
	if ns != nil {
		opts = append(opts, nftables.WithNetNSFd(int(ns.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		n.closeNS()
		return nil, fmt.Errorf("nftables netlink socket: %w", err)
	}
	n.Conn = c
	if err := n.grow(1 << 20); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// grow makes the socket's buffers hold a transaction of the given size: the
// batch is one message, longer than the default send buffer once a few
// thousand rules are in it, and the kernel acknowledges every operation of
// it at once.
func (n *nftConn) grow(bytes int) error {
	if bytes <= n.buf || n.sock == nil {
		return nil
	}
	rc, err := n.sock.SyscallConn()
	if err != nil {
		return fmt.Errorf("nftables socket: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, bytes); serr != nil {
				return
			}
		}
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("nftables socket buffers of %d bytes: %w", bytes, err)
	}
	n.buf = bytes
	return nil
}

func (n *nftConn) closeNS() {
	if n.ns != nil {
		n.ns.Close()
		n.ns = nil
	}
}

// Close ends the connection.
func (n *nftConn) Close() {
	if n.Conn != nil {
		n.CloseLasting()
	}
	n.closeNS()
}

// Cleanup removes the table from the network namespace at netns (the
// caller's when empty), with everything in it: `keelson agent --cleanup`.
// A table that is not there is not an error. Conntrack entries the rules
// made are left to expire.
func Cleanup(netns, table string) error {
	if table == "" {
		table = DefaultTable
	}
	n, err := dialNFT(netns)
	if err != nil {
		return err
	}
	defer n.Close()
	tables, err := n.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("list nftables tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == table }) {
		return nil
	}
	n.DelTable(&nftables.Table{Name: table, Family: nftables.TableFamilyIPv4})
	if err := n.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete nftables table ip %s: %w", table, err)
	}
	return nil
}
