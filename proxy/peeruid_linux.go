package proxy

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// peerUID returns the user that owns the local process's end of a loopback
// TCP connection, as the kernel's socket table (NETLINK_SOCK_DIAG) says.
// SO_PEERCRED, which answers this for Unix sockets, does not work on TCP.
func peerUID(c *net.TCPConn) (uint32, error) {
	s, err := netlink.SocketGet(c.RemoteAddr(), c.LocalAddr())
	if err != nil {
		return 0, fmt.Errorf("look up the owner of %s: %w", c.RemoteAddr(), err)
	}
	return s.UID, nil
}
