package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// OriginalDst is where a captured connection was headed before the
// redirect (SO_ORIGINAL_DST, from conntrack).
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var mreq *unix.IPv6Mreq
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		// struct sockaddr_in fits IPv6Mreq's 20 bytes: the usual way to
		// read SO_ORIGINAL_DST with x/sys/unix.
		mreq, gerr = unix.GetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IP, unix.SO_ORIGINAL_DST)
	}); err != nil {
		return netip.AddrPort{}, err
	}
	if gerr != nil {
		return netip.AddrPort{}, fmt.Errorf("capture: SO_ORIGINAL_DST of %s: %w", c.RemoteAddr(), gerr)
	}
	raw := mreq.Multiaddr
	port := binary.BigEndian.Uint16(raw[2:4])
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), port), nil
}

func readStatus() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	return string(b), err
}
