package proxy

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// quietFor reports how long a TCP socket has carried no data in either
// direction.
func quietFor(c *net.TCPConn) (time.Duration, error) {
	info, err := tcpInfo(c)
	if err != nil {
		return 0, err
	}
	return time.Duration(min(info.Last_data_recv, info.Last_data_sent)) * time.Millisecond, nil
}

// tcpInfo reads a socket's TCP_INFO.
func tcpInfo(c *net.TCPConn) (*unix.TCPInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return nil, err
	}
	return info, gerr
}

// socketBytes reports what a member socket has carried: bytes received
// from the member, and bytes sent to it that it acknowledged.
func socketBytes(c *net.TCPConn) (received, acked uint64, err error) {
	info, err := tcpInfo(c)
	if err != nil {
		return 0, 0, err
	}
	return info.Bytes_received, info.Bytes_acked, nil
}
