package proxy

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// quietFor reports how long a TCP socket has carried no data in either
// direction.
func quietFor(c *net.TCPConn) (time.Duration, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if gerr != nil {
		return 0, gerr
	}
	return time.Duration(min(info.Last_data_recv, info.Last_data_sent)) * time.Millisecond, nil
}
